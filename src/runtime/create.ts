import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { DestinationStream, Logger } from 'pino';
import { HealthRegistry } from '../health/index.js';
import { createLogger } from '../logging/index.js';
import { Metrics } from '../metrics/index.js';
import type { AlertEngine } from '../alerts/engine.js';
import { connectSupervisor, startAlerts } from './operations.js';
import type { SupervisorClient } from '../supervisor/client.js';
import { readAlertsFile, validateAlertsConfig, type AlertsConfig } from '../alerts/config.js';
import { MetricsHistory, type MetricsHistoryOptions } from '../metrics/history.js';
import { loadSettings, redactSettings, type Settings, type SettingsInput } from '../settings/index.js';
import { createStore } from '../store/index.js';
import type { Store, StoreOptions } from '../store/types.js';
import { InvalidationBus } from '../cache/bus.js';
import type { TObject } from 'typebox';
import { ConfigManager, type ConfigManagerOptions } from '../config/index.js';
import { GuardedRollouts } from '../flags/guard.js';
import { FlagService } from '../flags/service.js';
import type { FlagDefinition } from '../flags/types.js';
import { CacheJournal } from '../cache/journal.js';
import { MemoryCacheStore } from '../cache/memory.js';
import { CacheMetrics } from '../cache/metrics.js';
import { RedisCacheStore } from '../cache/redis.js';
import { TieredCache } from '../cache/tiered.js';
import { registerSupervisorSeries } from '../supervisor/series.js';
import { ErrorStore, ErrorTracker, SentryForwarder } from '../tracker/index.js';
import { observeFailover, type Failover } from '../failover/index.js';
import { connectRedis, type RedisDependency } from '../redis/connection.js';
import { createRateLimiter, type RateLimiter, type RateLimitPolicy } from '../ratelimit/index.js';
import {
  EmbeddedJobQueue,
  QueueMetrics,
  RedisJobQueue,
  type EmbeddedJobQueueOptions,
  type JobOptions,
  type JobQueue,
  type RedisJobQueueOptions,
} from '../queue/index.js';

/** Options of {@link createBulwark}; every setting overrides its environment variable. */
export interface BulwarkOptions<S extends TObject = TObject> extends SettingsInput {
  /**
   * The service's own configuration, managed by a {@link ConfigManager} (`bulwark.config`): its
   * TypeBox schema and file (default `<BULWARK_DATA_DIR>/config.json`), validated at start,
   * hot-reloaded (`watch`, default true), versioned. See docs/config.md.
   */
  config?: Omit<ConfigManagerOptions<S>, 'file' | 'logger'> & { file?: string; watch?: boolean };
  /** Environment to read settings from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Use this pino logger instead of creating one (its redaction is then yours). */
  logger?: Logger;
  /** Where the created logger writes (default stdout, asynchronously). */
  logDestination?: DestinationStream;
  /** Name of the service in logs, health reports and OpenAPI (default `bulwark`). */
  serviceId?: string;
  /** Version of the service in health reports (`releaseId`) and OpenAPI (default Bulwark's version). */
  serviceVersion?: string;
  /** Store overrides, e.g. `{ sqliteFile: ':memory:' }` for tests. */
  store?: Pick<StoreOptions, 'sqliteFile' | 'schema'>;
  /** Collect Node's default process metrics (default true). */
  defaultMetrics?: boolean;
  /**
   * Rate-limit policies of `bulwark.rateLimiter` (default one policy, `default`: 100 points per
   * second) and which one `consume()` uses without a name (default the first).
   */
  rateLimitPolicies?: { policies?: RateLimitPolicy[]; defaultPolicy?: string };
  /** Job queue tuning (lease, poll interval, claim batch, BullMQ driver); see docs/queues.md. */
  queues?: Pick<EmbeddedJobQueueOptions, 'leaseMs' | 'pollMs' | 'claimBatch'> & {
    redis?: Pick<RedisJobQueueOptions, 'keepCompletedMs' | 'replayIntervalMs' | 'stallMs'>;
  };
  /**
   * Alerting (`bulwark.alerts`, docs/alerting.md): rules, receivers and routes. Default: the
   * `BULWARK_ALERTS_FILE` JSON file if set, else no alerting.
   */
  alerts?: AlertsConfig;
  /**
   * The embedded metrics history (`bulwark.metrics.history`, docs/metrics-history.md): sampling
   * interval, tiers and compaction; `false` turns it off. Default on, every 10 s.
   */
  metricsHistory?: false | Pick<MetricsHistoryOptions, 'intervalMs' | 'tiers' | 'compactEveryMs'>;
}

/** The policy used when none is configured: 100 points per second. */
export const DEFAULT_RATE_LIMIT_POLICY: RateLimitPolicy = { name: 'default', limit: 100, windowMs: 1000 };

/** Browser error reports accepted per client IP (the `/errors/browser` route). */
export const BROWSER_ERRORS_POLICY: RateLimitPolicy = {
  name: 'bulwark.browser-errors',
  limit: 30,
  windowMs: 60_000,
};

/** A running Bulwark: the subsystems, ready to use; `close()` releases everything it opened. */
export interface Bulwark<S extends TObject = TObject> {
  /** The service's configuration (with the `config` option), else undefined. */
  readonly config: ConfigManager<S> | undefined;
  readonly settings: Settings;
  readonly logger: Logger;
  readonly store: Store;
  /** L1 in process, plus L2 on Redis behind its failover when `REDIS_URL` is set. */
  readonly cache: TieredCache;
  /**
   * Rate limiting: on Redis when `REDIS_URL` is set (each instance falls back to its share of the
   * limit while Redis is down), else in memory. `consume(key, points?, policy?)`.
   */
  readonly rateLimiter: RateLimiter;
  /**
   * Durable job queues: `add(queue, data, opts?)` resolves once the job is in the store;
   * `process(queue, handler, { concurrency })`. See docs/queues.md.
   */
  readonly queues: JobQueue;
  /**
   * Feature flags: `isEnabled(key, context?)`, `evaluate(...)`, `set`, `kill`, `rollout`, `history`.
   * Every Bulwark tool has one (`bulwark.cache`, `bulwark.ratelimit`, and with Redis
   * `bulwark.redis` and `bulwark.queues.redis`). See docs/flags.md.
   */
  readonly flags: FlagService;
  /**
   * Guarded progressive rollouts of flags: `start(key, plan, who)`, `observe(key, variant, outcome)`,
   * `status(key)`, `abort(key, who)`; evaluated every 5 s on the outcomes of every instance.
   */
  readonly rollouts: GuardedRollouts;
  /**
   * Failovers of the degradable dependencies that are configured (`redis` with `REDIS_URL`);
   * `setForced(true)` is the kill switch that forces the embedded fallback.
   */
  readonly dependencies: Readonly<Record<string, Failover>>;
  readonly health: HealthRegistry;
  readonly metrics: Metrics;
  readonly serviceId: string;
  /** Unique per process (`host:pid:random`): tells instances apart on shared Redis. */
  readonly instanceId: string;
  /**
   * Error tracking: `capture(error, context?)`, `groups()`, `group(fingerprint)`, `setState(...)`;
   * request errors (5xx) and browser reports are captured by the Fastify plugin. Forwards to
   * Sentry when `SENTRY_DSN` is set. See docs/error-tracking.md.
   */
  readonly errors: ErrorTracker;
  /**
   * The link to `bulwark supervise` when running under it (else undefined): heartbeats, the ready
   * message (sent by the Fastify plugin once listening), and recovery requests — soft and medium
   * drop this process's L1 cache and run the garbage collector when exposed (`--expose-gc`); add
   * your own with `onRecover(handler)` (medium: shed non-essential work until `normal`).
   */
  readonly supervisor: SupervisorClient | undefined;
  /**
   * Alerting when configured (the `alerts` option or `BULWARK_ALERTS_FILE`), else undefined: rules
   * over the metrics history, notifications once per transition through a durable outbox.
   */
  readonly alerts: AlertEngine | undefined;
  /** The service's version (`serviceVersion`, else Bulwark's own). */
  readonly version: string;
  /** Stops checks, closes the store, flushes logs. Safe to call more than once. */
  close(): Promise<void>;
}

/** The package version, read once. */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/**
 * Validates the settings, then opens the store (running migrations) and starts the health checks.
 * Throws `BWK_ERR_SETTINGS_INVALID` (naming every bad field) or `BWK_ERR_STORE_UNAVAILABLE`
 * without leaving anything open. Readiness stays `starting` until `health.markReady()` (the Fastify
 * plugin calls it when the app is ready).
 */
export async function createBulwark<S extends TObject = TObject>(
  options: BulwarkOptions<S> = {},
): Promise<Bulwark<S>> {
  const settings = loadSettings(options, options.env ?? process.env);
  const serviceId = options.serviceId ?? 'bulwark';
  // Checked before anything opens: a bad alerting configuration stops the start, naming each field.
  const alertsConfig =
    options.alerts !== undefined
      ? validateAlertsConfig(options.alerts, 'alerts')
      : settings.alertsFile === undefined
        ? undefined
        : readAlertsFile(settings.alertsFile);
  const logger =
    options.logger ??
    createLogger({
      level: settings.logLevel,
      base: { service: serviceId },
      ...(options.logDestination === undefined ? {} : { destination: options.logDestination }),
    });
  const metrics = new Metrics({ defaultMetrics: options.defaultMetrics ?? true });
  let store: Store;
  try {
    store = await createStore({
      databaseUrl: settings.databaseUrl,
      dataDir: settings.dataDir,
      onQuery: metrics.observeQuery,
      ...options.store,
    });
  } catch (error) {
    metrics.close();
    logger.flush();
    throw error;
  }
  if (options.metricsHistory !== false) {
    metrics.history = new MetricsHistory({
      store,
      registry: metrics.registry,
      logger,
      ...options.metricsHistory,
    });
    registerSupervisorSeries(metrics.history);
    metrics.history.start();
  }
  logger.info(
    { settings: redactSettings(settings), engine: store.engine, version: VERSION },
    'bulwark starting',
  );

  const version = options.serviceVersion ?? VERSION;
  const health = new HealthRegistry({ logger, identity: { serviceId, releaseId: version } });
  health.register({
    name: 'store:responseTime',
    componentType: 'datastore',
    critical: true,
    intervalMs: 5000,
    timeoutMs: 1000,
    check: async () => ({ status: 'pass', observedValue: round(await store.ping()), observedUnit: 'ms' }),
  });
  const instanceId = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  let redis: RedisDependency | undefined;
  let bus: InvalidationBus | undefined;
  if (settings.redisUrl !== undefined) {
    redis = await connectRedis(settings.redisUrl, logger);
    observeFailover(redis.failover, { metrics, health, logger });
    bus = new InvalidationBus({
      client: redis.client,
      channel: 'bulwark:cache:invalidate:default',
      instanceId,
      logger,
    });
    bus.start();
  } else {
    health.register({
      name: 'cache:tier',
      componentType: 'component',
      critical: false,
      intervalMs: 60_000,
      check: () => ({ status: 'pass', observedValue: 'embedded', output: 'L1 only: REDIS_URL is not set' }),
    });
  }
  const cache = new TieredCache({
    name: 'default',
    // Evictions are counted once the cache exists (the callback only runs on later writes).
    l1: new MemoryCacheStore({ name: 'l1', onEvict: () => cache.noteEviction() }),
    ...(redis === undefined
      ? {}
      : {
          l2: {
            store: new RedisCacheStore({ client: redis.client, prefix: 'bulwark:cache:' }),
            failover: redis.failover,
            journal: new CacheJournal(store.kv, 'default'),
            ...(bus === undefined ? {} : { bus }),
          },
        }),
    metrics: new CacheMetrics(metrics.registry),
    logger,
  });
  const rateLimiter = createRateLimiter({
    policies: [
      ...(options.rateLimitPolicies?.policies ?? [DEFAULT_RATE_LIMIT_POLICY]),
      BROWSER_ERRORS_POLICY,
    ],
    ...(options.rateLimitPolicies?.defaultPolicy === undefined
      ? {}
      : { defaultPolicy: options.rateLimitPolicies.defaultPolicy }),
    ...(redis === undefined ? {} : { redis: { client: redis.client, failover: redis.failover } }),
    instanceId,
    registry: metrics.registry,
  });
  const queueMetrics = new QueueMetrics(metrics.registry);
  let queues: JobQueue;
  // With Redis: BullMQ behind the failover, the embedded queue as its durable outage spool (and its
  // schedules' occurrences added through BullMQ while Redis is up).
  let redisQueues: RedisJobQueue | undefined;
  const embedded: EmbeddedJobQueue = new EmbeddedJobQueue({
    store,
    instanceId,
    metrics: queueMetrics,
    logger,
    ...(options.queues === undefined ? {} : pickEmbedded(options.queues)),
    ...(redis === undefined
      ? {}
      : {
          schedulerAdd: (q: string, data: unknown, o: JobOptions) =>
            (redisQueues ?? embedded).add(q, data, o),
        }),
  });
  if (redis === undefined || settings.redisUrl === undefined) queues = embedded;
  else {
    redisQueues = new RedisJobQueue({
      url: settings.redisUrl,
      failover: redis.failover,
      client: redis.client,
      spool: embedded,
      store,
      instanceId,
      metrics: queueMetrics,
      logger,
      ...(options.queues?.leaseMs === undefined ? {} : { leaseMs: options.queues.leaseMs }),
      ...(options.queues?.redis ?? {}),
    });
    queues = redisQueues;
  }
  const flags = await startFlags({
    settings,
    store,
    redis,
    instanceId,
    logger,
    health,
    inMemory: options.store?.sqliteFile === ':memory:',
  });
  const errors = new ErrorTracker({
    errors: new ErrorStore(store.db),
    audit: store.audit,
    logger,
    flags,
    release: version,
    registry: metrics.registry,
    ...(settings.sentryDsn === undefined
      ? {}
      : {
          sentry: await SentryForwarder.create({
            dsn: settings.sentryDsn,
            release: version,
            environment: settings.nodeEnv,
            serverName: hostname(),
            logger,
          }),
        }),
  });
  // Each tool follows its flag, live; a flag only acts when it changes (so the admin API's
  // dependency kill switch is not undone by an unrelated flag change).
  const tools: Record<string, (on: boolean) => void> = {
    'bulwark.cache': (on) => (cache.enabled = on),
    'bulwark.ratelimit': (on) => (rateLimiter.enabled = on),
    ...(redisQueues === undefined
      ? {}
      : { 'bulwark.queues.redis': (on: boolean) => (redisQueues.redisEnabled = on) }),
    ...(redis === undefined ? {} : { 'bulwark.redis': (on: boolean) => redis.failover.setForced(!on) }),
  };
  const applyTool = (key: string) => tools[key]?.(flags.isEnabled(key, {}, true));
  for (const key of Object.keys(tools)) if (!flags.isEnabled(key, {}, true)) applyTool(key);
  flags.onChange((change) => applyTool(change.key));
  const rollouts = new GuardedRollouts({ flags, store, instanceId, logger });
  rollouts.startTicking();
  const config = await startConfig(options.config, settings, logger, health);
  await health.start();
  const supervisor = connectSupervisor(logger, version, cache, queues);
  const alerts =
    alertsConfig === undefined
      ? undefined
      : await startAlerts(alertsConfig, {
          store,
          logger,
          serviceId,
          instanceId,
          flags,
          queues,
          history: metrics.history,
        });

  let closing: Promise<void> | undefined;
  return {
    settings,
    logger,
    store,
    cache,
    rateLimiter,
    queues,
    flags,
    rollouts,
    config,
    dependencies: redis === undefined ? {} : { redis: redis.failover },
    health,
    supervisor,
    errors,
    alerts,
    metrics,
    serviceId,
    instanceId,
    version,
    close() {
      closing ??= (async () => {
        supervisor?.close();
        await alerts?.close();
        health.close();
        await errors.close();
        // Running jobs get half the shutdown budget, then go back to the queue for the next start.
        await queues.close(Math.floor(settings.shutdownTimeoutMs / 2));
        cache.close();
        rollouts.close();
        await config?.close();
        flags.close();
        bus?.close();
        // Before the connection goes: removes this instance from the live set on Redis.
        await rateLimiter.close();
        redis?.close();
        await metrics.history?.close();
        try {
          await store.close();
        } finally {
          metrics.close();
          logger.flush();
        }
      })();
      return closing;
    },
  };
}

/**
 * The service's config manager: started (a broken file falls back to the last good revision, and
 * `/health` says so), watched for edits, and reported by the `config:revision` check.
 */
async function startConfig<S extends TObject>(
  options: BulwarkOptions<S>['config'],
  settings: Settings,
  logger: Logger,
  health: HealthRegistry,
): Promise<ConfigManager<S> | undefined> {
  if (options === undefined) return undefined;
  const { file, watch, ...rest } = options;
  const config = new ConfigManager<S>({
    ...rest,
    file: file ?? path.join(settings.dataDir, 'config.json'),
    logger,
  });
  const started = await config.start();
  let problem: string | undefined = started.error?.message;
  config.onInvalid((error) => (problem = error.message));
  config.onChange(() => (problem = undefined));
  if (watch !== false) config.watch();
  health.register({
    name: 'config:revision',
    componentType: 'component',
    critical: false,
    readiness: true,
    intervalMs: 5000,
    check: () =>
      problem === undefined
        ? { status: 'pass', observedValue: config.revision }
        : {
            status: 'warn',
            observedValue: config.revision,
            output: `running the last good revision: ${problem}`,
          },
  });
  return config;
}

/** Bulwark's own tool flags: every one on by default. */
function toolFlag(key: string, description: string): FlagDefinition {
  return {
    key,
    type: 'boolean',
    description,
    variants: { on: true, off: false },
    defaultVariant: 'on',
    offVariant: 'off',
    enabled: true,
  };
}

/** The flag service: store-backed, snapshot in the data dir, pub/sub with Redis, a provenance check. */
async function startFlags(deps: {
  settings: Settings;
  store: Store;
  redis: RedisDependency | undefined;
  instanceId: string;
  logger: Logger;
  health: HealthRegistry;
  inMemory: boolean;
}): Promise<FlagService> {
  const { settings, redis } = deps;
  const defaults = [
    toolFlag('bulwark.cache', 'The cache. Off: reads miss, sets store nothing, deletes still apply.'),
    toolFlag('bulwark.ratelimit', 'Rate limiting. Off: every request is admitted, no rate-limit headers.'),
    toolFlag('bulwark.errors', 'Error tracking. Off: nothing is captured, stored or forwarded.'),
    toolFlag(
      'bulwark.errors.sample',
      'Per captured error: whether it is kept as a sample and forwarded. A rollout percentage samples; counts stay exact.',
    ),
    ...(settings.sentryDsn === undefined
      ? []
      : [
          toolFlag(
            'bulwark.errors.sentry',
            'Forwarding to Sentry. Off: errors are tracked here only (kill switch).',
          ),
        ]),
    ...(redis === undefined
      ? []
      : [
          toolFlag(
            'bulwark.redis',
            'Redis. Off: every Redis user runs on its embedded fallback (kill switch).',
          ),
          toolFlag('bulwark.queues.redis', 'BullMQ for new jobs. Off: jobs go to the embedded queue.'),
        ]),
  ];
  let bus: InvalidationBus<{ revision: number }> | undefined;
  if (redis !== undefined) {
    bus = new InvalidationBus<{ revision: number }>({
      client: redis.client,
      channel: 'bulwark:flags:changed',
      instanceId: deps.instanceId,
      logger: deps.logger,
    });
    bus.start();
  }
  const flags = new FlagService({
    store: deps.store,
    // An in-memory store (tests) keeps nothing on disk, so neither does its flag snapshot.
    ...(deps.inMemory ? {} : { snapshotFile: path.join(settings.dataDir, 'flags.snapshot.json') }),
    ...(settings.flagsFile === undefined ? {} : { bootstrapFile: settings.flagsFile }),
    defaults,
    ...(bus === undefined ? {} : { bus }),
    logger: deps.logger,
  });
  await flags.start();
  deps.health.register({
    name: 'flags:source',
    componentType: 'component',
    critical: false,
    readiness: true,
    intervalMs: 5000,
    check: () => {
      const p = flags.provenance;
      const age = Math.round((Date.now() - p.loadedAt) / 1000);
      const output = `${p.flags} flags from the ${p.source} (revision ${p.revision}, read ${age} s ago)`;
      return { status: p.source === 'store' ? 'pass' : 'warn', observedValue: p.source, output };
    },
  });
  return flags;
}

function pickEmbedded(
  opts: NonNullable<BulwarkOptions['queues']>,
): Pick<EmbeddedJobQueueOptions, 'leaseMs' | 'pollMs' | 'claimBatch'> {
  const { redis: _redis, ...embedded } = opts;
  return embedded;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

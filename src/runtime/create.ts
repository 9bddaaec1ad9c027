import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { DestinationStream, Logger } from 'pino';
import type { TObject } from 'typebox';
import type { AlertsConfig } from '../alerts/config.js';
import type { AlertEngine } from '../alerts/engine.js';
import type { CachePartOptions } from '../cache/part.js';
import type { TieredCache } from '../cache/tiered.js';
import type { ConfigManager } from '../config/index.js';
import type { ConfigPartOptions } from '../config/part.js';
import type { Failover } from '../failover/index.js';
import type { GuardedRollouts } from '../flags/guard.js';
import type { FlagService } from '../flags/service.js';
import { HealthRegistry } from '../health/index.js';
import { createLogger } from '../logging/index.js';
import { Metrics } from '../metrics/index.js';
import type { Leaks } from '../leaks/part.js';
import type { LeakOptions } from '../leaks/types.js';
import type { HistoryPartOptions } from '../metrics/part.js';
import { partsFor, startParts, type AnyPart, type PartServices } from '../parts/index.js';
import type { Outbound, OutboundHttp, OutboundOptions, Protect } from '../outbound/index.js';
import type { JobQueue } from '../queue/index.js';
import type { Protection } from '../protection/index.js';
import type { ProtectionOptions } from '../protection/part.js';
import type { QueuePartOptions } from '../queue/part.js';
import type { RateLimitPartOptions } from '../ratelimit/part.js';
import type { RateLimiter } from '../ratelimit/index.js';
import type { RedisDependency } from '../redis/connection.js';
import { loadSettings, redactSettings, type Settings, type SettingsInput } from '../settings/index.js';
import type { StorePartOptions } from '../store/part.js';
import type { Store } from '../store/types.js';
import type { SupervisorClient } from '../supervised/client.js';
import { VERSION } from '../version.js';
import { bulwarkParts } from './parts.js';
import type { ErrorTracker } from '../tracker/index.js';
import type { DegradationController, DegradationOptions } from '../degradation/part.js';

export { BROWSER_ERRORS_POLICY, DEFAULT_RATE_LIMIT_POLICY } from '../ratelimit/part.js';

/** Options of {@link createBulwark}; every setting overrides its environment variable. */
export interface BulwarkOptions<S extends TObject = TObject> extends SettingsInput {
  /**
   * The service's own configuration, managed by a {@link ConfigManager} (`bulwark.config`): its
   * TypeBox schema and file (default `<BULWARK_DATA_DIR>/config.json`), validated at start,
   * hot-reloaded (`watch`, default true), versioned. See docs/config.md.
   */
  config?: ConfigPartOptions<S>;
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
  store?: StorePartOptions;
  /** Collect Node's default process metrics (default true). */
  defaultMetrics?: boolean;
  /**
   * Rate-limit policies of `bulwark.rateLimiter` (default one policy, `default`: 100 points per
   * second) and which one `consume()` uses without a name (default the first).
   */
  rateLimitPolicies?: RateLimitPartOptions;
  /**
   * The `default` cache's in-process tier (`bulwark.cache`): `maxEntries` (default 10 000) and
   * `maxBytes` (default 64 MiB). Size it to the working set: a cache smaller than the keys read in
   * turn evicts each before it is read again.
   */
  cache?: CachePartOptions;
  /** Job queue tuning (lease, poll interval, claim batch, BullMQ driver); see docs/queues.md. */
  queues?: QueuePartOptions;
  /**
   * Alerting (`bulwark.alerts`, docs/alerting.md): rules, receivers and routes. Default: the
   * `BULWARK_ALERTS_FILE` JSON file if set, else no alerting.
   */
  alerts?: AlertsConfig;
  /**
   * The embedded metrics history (`bulwark.metrics.history`, docs/metrics-history.md): sampling
   * interval, tiers and compaction; `false` turns it off. Default on, every 10 s.
   */
  metricsHistory?: HistoryPartOptions;
  /**
   * Load shedding of the Fastify plugin's routes (`true` or options; docs/protection.md): an
   * adaptive concurrency limit and request classes (route `config.priority`), shed lowest first
   * with 503 and `Retry-After`. Default off. The Fastify plugin engages it; `bulwark.protection`
   * exists either way (its tuning comes from the options given when the Bulwark was created).
   */
  protection?: ProtectionOptions | boolean;
  /**
   * The degradation controller (docs/protection.md#degradation): levels of features (flags) to turn
   * off one at a time while load is shed or other pressure persists, back on once it is gone.
   * Default: none.
   */
  degradation?: DegradationOptions;
  /**
   * Upstreams of `bulwark.http` and `bulwark.protect` (docs/outbound.md): by name, the origin, the
   * deadline, retries, breaker and throttle; each gets a kill-switch flag `bulwark.outbound.<name>`
   * and a health check `outbound:<name>`. Default: none (`protect()` still works with defaults).
   */
  outbound?: OutboundOptions;
  /**
   * Leak detection (`bulwark.leaks`, docs/leaks.md): sampling interval, window, budgets per signal,
   * store connection hold time, heap snapshot bounds; `false` turns it off. Default on: every 10 s,
   * over 10 minutes.
   */
  leaks?: LeakOptions | false;
  /**
   * Edits the list of parts before they start: add your own (started after the parts they
   * `need`, closed before them, their values in `bulwark.parts`, their `migrations` applied with
   * Bulwark's in name order), or wrap one. Default: as it is.
   */
  parts?: (parts: AnyPart[]) => AnyPart[];
}

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
  /**
   * Load shedding of the HTTP plugin's requests (its `protection` option): the shedder's state,
   * `enabled` (the flag `bulwark.protection`), `shedding`. See docs/protection.md.
   */
  readonly protection: Protection;
  /** The degradation controller with the `degradation` option, else undefined. */
  readonly degradation: DegradationController | undefined;
  /**
   * HTTP calls to the `outbound.upstreams` over undici: `request(upstream, { method, path, headers,
   * body, deadlineMs, idempotent, fallback })` with a deadline, a circuit breaker, adaptive
   * throttling, retries of idempotent calls within a budget and a kill switch; `upstreams()`.
   */
  readonly http: OutboundHttp;
  /**
   * `protect(name, fn, { deadlineMs, idempotent, fallback })`: any async call (a database, an SDK)
   * through the same breaker, throttle, deadline and kill switch; `fn` receives an AbortSignal.
   */
  readonly protect: Protect;
  /**
   * Leak detection (unless `leaks: false`): `detector.report()`, `detector.watchEmitter(name,
   * emitter)`, `snapshots.take()`. Reported in the `leaks:growth` health check. See docs/leaks.md.
   */
  readonly leaks: Leaks | undefined;
  /** The service's version (`serviceVersion`, else Bulwark's own). */
  readonly version: string;
  /** The value of every part by name, your own parts' too (undefined for a part that is off). */
  readonly parts: ReadonlyMap<string, unknown>;
  /** Stops checks, closes the store, flushes logs. Safe to call more than once. */
  close(): Promise<void>;
}

export { VERSION };

/**
 * The option of {@link createBulwark} that configures each of Bulwark's parts that has one (by part
 * name); docs/architecture.md lists them (test/architecture-doc.test.ts).
 */
export const PART_OPTIONS = {
  store: 'store',
  history: 'metricsHistory',
  cache: 'cache',
  rateLimiter: 'rateLimitPolicies',
  queues: 'queues',
  config: 'config',
  alerts: 'alerts',
  protection: 'protection',
  degradation: 'degradation',
  outbound: 'outbound',
  leaks: 'leaks',
} as const satisfies Record<string, keyof BulwarkOptions>;

/** The settings, logger, metrics and health every part is given, from `options`, and the alerting configuration. */
async function coreOf(
  options: BulwarkOptions,
): Promise<{ core: PartServices; alertsConfig: AlertsConfig | undefined }> {
  const env = options.env ?? process.env;
  const settings = loadSettings(options, env);
  const serviceId = options.serviceId ?? 'bulwark';
  // Checked before anything opens: a bad alerting configuration stops the start, naming each field.
  // Its validation is loaded only when there is one to check.
  const alertsConfig =
    options.alerts !== undefined
      ? (await import('../alerts/config.js')).validateAlertsConfig(options.alerts, 'alerts')
      : settings.alertsFile === undefined
        ? undefined
        : (await import('../alerts/config.js')).readAlertsFile(settings.alertsFile);
  const logger =
    options.logger ??
    createLogger({
      level: settings.logLevel,
      base: { service: serviceId },
      ...(options.logDestination === undefined ? {} : { destination: options.logDestination }),
    });
  const version = options.serviceVersion ?? VERSION;
  const metrics = new Metrics({ defaultMetrics: options.defaultMetrics ?? true });
  const health = new HealthRegistry({ logger, identity: { serviceId, releaseId: version } });
  const instanceId = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const supervised = env['BULWARK_SUPERVISED'] === '1';
  return {
    core: { settings, logger, metrics, health, serviceId, instanceId, version, supervised },
    alertsConfig,
  };
}

/** Parts opened by {@link openParts}. */
export interface OpenParts {
  readonly settings: Settings;
  readonly logger: Logger;
  /** The value of a part that was opened (undefined for one that is off). */
  get<T>(name: string): T;
  /** Closes what was opened, in reverse order. */
  close(): Promise<void>;
}

/**
 * Opens only the parts named and the parts they need (e.g. `['flags']`: the store, Redis when
 * configured, the flag service), for tools that use one capability, such as the CLI. Same settings,
 * validation and unwinding as {@link createBulwark}, and the same schema history (the store applies
 * the migrations of every part, `options.parts` included, not only of those opened); no health
 * checks, no tool-flag following.
 */
export async function openParts(names: string[], options: BulwarkOptions = {}): Promise<OpenParts> {
  const { core, alertsConfig } = await coreOf(options);
  const close = () => {
    core.metrics.close();
    core.logger.flush();
  };
  let parts;
  try {
    const standard = bulwarkParts(options, alertsConfig);
    const all = options.parts?.(standard) ?? standard;
    parts = await startParts(partsFor(all, names), core, all);
  } catch (error) {
    close();
    throw error;
  }
  return {
    settings: core.settings,
    logger: core.logger,
    get: <T>(name: string) => parts.values.get(name) as T,
    close: async () => {
      try {
        await parts.close();
      } finally {
        close();
      }
    },
  };
}

/**
 * Validates the settings (and the alerting configuration) before anything opens, then starts every
 * part in dependency order and the health checks. If anything fails to start, whatever already
 * started is closed in reverse order and the original error is thrown (`BWK_ERR_SETTINGS_INVALID`
 * naming every bad field, `BWK_ERR_STORE_UNAVAILABLE`, `BWK_ERR_CONFIG_INVALID`, ...), leaving
 * nothing open. Readiness stays `starting` until `health.markReady()` (the Fastify plugin calls it
 * when the app is ready).
 */
export async function createBulwark<S extends TObject = TObject>(
  options: BulwarkOptions<S> = {},
): Promise<Bulwark<S>> {
  const { core, alertsConfig } = await coreOf(options);
  const { settings, logger, metrics, health, serviceId, instanceId, version } = core;
  logger.info(
    {
      settings: redactSettings(settings),
      engine: settings.databaseUrl === undefined ? 'sqlite' : 'postgres',
      version: VERSION,
    },
    'bulwark starting',
  );
  const standard = bulwarkParts(options, alertsConfig);
  const all = options.parts?.(standard) ?? standard;
  let parts;
  try {
    parts = await startParts(all, core);
  } catch (error) {
    health.close();
    metrics.close();
    logger.flush();
    throw error;
  }
  const close = async (): Promise<void> => {
    health.close();
    try {
      await parts.close();
    } finally {
      metrics.close();
      logger.flush();
    }
  };
  const value = <T>(name: string) => parts.values.get(name) as T;
  try {
    followToolFlags(value<FlagService>('flags'), all, parts.values);
    await health.start();
  } catch (error) {
    await close();
    throw error;
  }
  const redis = value<RedisDependency | undefined>('redis');
  const outbound = value<Outbound>('outbound');
  let closing: Promise<void> | undefined;
  return {
    settings,
    logger,
    store: value('store'),
    cache: value('cache'),
    rateLimiter: value('rateLimiter'),
    queues: value('queues'),
    flags: value('flags'),
    rollouts: value('rollouts'),
    config: value('config'),
    dependencies: redis === undefined ? {} : { redis: redis.failover },
    health,
    supervisor: value('supervisor'),
    errors: value('errors'),
    alerts: value('alerts'),
    protection: value('protection'),
    degradation: value('degradation'),
    http: outbound,
    protect: outbound.protect,
    leaks: value('leaks'),
    metrics,
    serviceId,
    instanceId,
    version,
    parts: parts.values,
    close: () => (closing ??= close()),
  };
}

/**
 * Each part follows its tool flags, live. A flag only acts when it changes, or at start when it is
 * off (so the admin API's dependency kill switch is not undone by an unrelated flag change).
 */
function followToolFlags(flags: FlagService, parts: AnyPart[], values: ReadonlyMap<string, unknown>): void {
  const handlers = new Map<string, (on: boolean) => void>();
  for (const part of parts) {
    const value = values.get(part.name);
    if (part.follow === undefined || value === undefined) continue;
    for (const [key, handler] of Object.entries(part.follow(value))) handlers.set(key, handler);
  }
  const apply = (key: string) => handlers.get(key)?.(flags.isEnabled(key, {}, true));
  for (const key of handlers.keys()) if (!flags.isEnabled(key, {}, true)) apply(key);
  flags.onChange((change) => apply(change.key));
}

import pidusage from 'pidusage';
import type { Logger } from 'pino';
import { bulwarkError, isBulwarkError } from '../errors/index.js';
import { Instance, type ExitInfo } from './instance.js';
import { LivenessMonitor } from './liveness.js';
import { SupervisorMetrics } from './metrics.js';
import type { SuperviseOptions } from './options.js';
import { secureStateDir } from './private-files.js';
import type { ClusterProxy } from './proxy.js';
import { SupervisorRecords, type CrashRecord, type SupervisorEvent } from './records.js';
import { redactDeep, secretValues } from './redact.js';
import { restartDirect, rollingReload, type ReloadContext, type ReloadResult } from './reload.js';
import { closeFront, openFront, placeInstance, type Front } from './front.js';
import { createSlot, resetHealth, slotStatus, type Slot } from './slot.js';

export { freePort, portIsFree } from './ports.js';
export type { CrashRecord, RecoveryRecord, SupervisorEvent } from './records.js';
export type { ReloadResult } from './reload.js';
export type { SlotState } from './slot.js';

const LAST_LINES = 50;

/** Options of {@link Supervisor} beyond the CLI's. */
export interface SupervisorDeps {
  logger: Logger;
  /** Replaced in tests. */
  now?: () => number;
}

/**
 * `bulwark supervise`: keeps the app running, one process (direct mode) or `instances` (cluster
 * mode). `--balance socket` (default): the supervisor holds the public listening socket and every
 * app process accepts from it (through the listen preload), so connections wait in the kernel's
 * backlog while a process restarts and cluster mode has no per-request hop. `--balance proxy`:
 * direct mode's app binds the port itself; cluster mode's processes listen on internal ports
 * behind {@link ClusterProxy}, which retries a dead instance's idempotent requests.
 */
export class Supervisor {
  readonly options: SuperviseOptions;
  readonly metrics: SupervisorMetrics;
  readonly #logger: Logger;
  readonly #slots: Slot[] = [];
  #proxy: ClusterProxy | undefined;
  #front: Front = {};
  readonly #records: SupervisorRecords;
  readonly #liveness: LivenessMonitor;
  /** The app's environment, and its secret values: scrubbed from everything the supervisor shows or writes. */
  readonly #env: NodeJS.ProcessEnv;
  readonly #secrets: readonly string[];
  /** What the liveness checks and the reload reach of this supervisor. */
  readonly #context: ReloadContext;
  readonly startedAt = Date.now();
  #state: 'starting' | 'running' | 'reloading' | 'stopping' | 'stopped' = 'starting';
  #lastReload: ReloadResult | undefined;
  #exitCode: number | undefined;
  #onAllStopped: ((code: number) => void) | undefined;

  constructor(options: SuperviseOptions, deps: SupervisorDeps) {
    this.options = options;
    this.#logger = deps.logger;
    this.#env = { ...process.env, ...options.env };
    this.#secrets = secretValues(this.#env);
    this.metrics = new SupervisorMetrics(() => ({
      startedAt: this.startedAt,
      state: this.#state,
      slots: this.#slots.map((slot) => ({
        index: slot.index,
        state: slot.state,
        uptimeMs: slot.instance?.state === 'ready' ? slot.instance.uptimeMs : 0,
        rss: slot.instance?.sample?.rss,
        cpu: slot.instance?.sample?.cpu,
      })),
    }));
    const count = options.instances ?? 1;
    for (let index = 0; index < count; index++) this.#slots.push(createSlot(index, options, this.#logger));
    this.#records = new SupervisorRecords({
      stateDir: options.stateDir,
      logger: deps.logger,
      metrics: this.metrics,
      secrets: this.#secrets,
      snapshot: () => this.#status(),
    });
    this.#context = {
      options,
      slots: this.#slots,
      proxy: () => this.#proxy,
      retire: (instance, reason) => this.#retire(instance, reason),
      spawn: (slot) => this.#spawn(slot, true),
      watchExit: (slot, instance) => void instance.ended.then((info) => this.#onExit(slot, instance, info)),
      launch: (slot, reason) => this.#launch(slot, reason),
      stopping: () => this.#stopping(),
    };
    this.#liveness = new LivenessMonitor({
      ...this.#context,
      logger: deps.logger,
      records: this.#records,
      metrics: this.metrics,
      secrets: this.#secrets,
    });
  }

  get state(): string {
    return this.#state;
  }

  /** The public port (the shared socket's or the proxy's once bound: the one the kernel gave for port 0). */
  get port(): number {
    return this.#front.port ?? this.options.port;
  }

  /** Resolves with the exit code once every slot stopped for good (exit codes that mean "do not restart"). */
  onAllStopped(fn: (code: number) => void): void {
    this.#onAllStopped = fn;
  }

  /**
   * Starts every slot; resolves once each has had its first start attempt. The state directory is
   * made private first (0700, its files 0600): `BWK_ERR_SUPERVISOR_STATE_DIR` when it cannot be.
   */
  async start(): Promise<void> {
    secureStateDir(this.options.stateDir);
    await this.#records.load();
    this.#front = await openFront(this.options, this.#logger);
    this.#proxy = this.#front.proxy;
    this.#records.event('started', undefined, {
      mode: this.options.instances === undefined ? 'direct' : 'cluster',
      balance: this.options.balance,
      instances: this.#slots.length,
      port: this.port,
      command: redactDeep(this.options.command, this.#secrets),
    });
    this.#liveness.start();
    await Promise.all(this.#slots.map((slot) => this.#launch(slot, 'start')));
    if (this.#state === 'starting') this.#state = 'running';
    this.#records.persist();
  }

  /** Everything `bulwark supervise status` and the admin API show, with no secret of the app in it. */
  status(): Record<string, unknown> {
    return redactDeep(this.#status(), this.#secrets);
  }

  #status(): Record<string, unknown> {
    return {
      pid: process.pid,
      state: this.#state,
      mode: this.options.instances === undefined ? 'direct' : 'cluster',
      balance: this.options.balance,
      port: this.port,
      host: this.options.host,
      command: this.options.command,
      startedAt: new Date(this.startedAt).toISOString(),
      uptimeMs: Date.now() - this.startedAt,
      stateDir: this.options.stateDir,
      instances: this.#slots.map(slotStatus),
      proxy: this.#proxy?.stats(),
      lastReload: this.#lastReload,
      crashes: this.#records.crashes.slice(-20),
      recoveries: this.#records.recoveries.slice(-50),
    };
  }

  /** The last events (at most 500), oldest first, with no secret of the app in them. */
  events(since?: string): SupervisorEvent[] {
    return redactDeep(this.#records.events(since), this.#secrets);
  }

  // ---- starting and restarting -------------------------------------------------------------------

  async #launch(slot: Slot, reason: string): Promise<boolean> {
    if (this.#stopping()) return false;
    slot.timer = undefined;
    const parked = slot.state === 'parked';
    if (!parked) slot.state = 'starting';
    let instance: Instance;
    try {
      instance = await this.#spawn(slot);
    } catch (error) {
      this.#logger.error({ err: error, slot: slot.index }, 'cannot start the app');
      this.#records.event('start-failed', slot, { reason: (error as Error).message });
      this.#afterFailure(slot, {
        at: new Date().toISOString(),
        slot: slot.index,
        instanceId: `${slot.index}.${slot.generation}`,
        pid: undefined,
        reason: isBulwarkError(error, 'BWK_ERR_SUPERVISOR_PORT_BUSY') ? 'port-busy' : 'start-failed',
        exitCode: null,
        signal: null,
        uptimeMs: 0,
        rssAtDeath: undefined,
        reportPath: undefined,
        lastLines: [(error as Error).message],
      });
      return false;
    }
    slot.instance = instance;
    this.#records.event('spawned', slot, { pid: instance.pid, port: instance.port, reason });
    this.#context.watchExit(slot, instance);
    try {
      await instance.waitReady(this.options.readyPath, this.options.startTimeoutMs);
    } catch {
      if (instance.unusable !== undefined) this.#logger.error({ slot: slot.index }, instance.unusable);
      if (instance.state !== 'exited') {
        this.#records.event('start-timeout', slot, {
          pid: instance.pid,
          timeoutMs: this.options.startTimeoutMs,
        });
        await instance.stop('start-timeout', this.options.stopTimeoutMs);
      }
      return false;
    }
    if (slot.instance !== instance || this.#stopping()) return false;
    slot.state = 'running';
    resetHealth(slot, this.options);
    this.#proxy?.add({ id: instance.id, port: instance.port });
    this.#records.event(parked ? 'unparked' : 'ready', slot, {
      pid: instance.pid,
      startupMs: (instance.readyAt ?? Date.now()) - instance.startedAt,
    });
    if (parked) slot.policy.reset();
    this.#records.persist();
    return true;
  }

  /**
   * Starts a new instance for `slot`. `admitLater` (a reload's new instance on the shared socket):
   * it takes no public connection until {@link Instance.admit}.
   */
  async #spawn(slot: Slot, admitLater = false): Promise<Instance> {
    slot.generation += 1;
    const place = await placeInstance(this.#front, this.options, this.#env);
    if (admitLater && place.shared !== undefined)
      place.shared = { ...place.shared, env: { ...place.shared.env, BULWARK_LISTEN_ADMIT: 'probes' } };
    const instance = new Instance({
      id: `${slot.index}.${slot.generation}`,
      slot: slot.index,
      command: this.options.command,
      env: this.#env,
      ...place,
      heartbeatMs: Math.max(25, Math.min(1000, Math.floor(this.options.heartbeatTimeoutMs / 4))),
      log: slot.log,
      ring: slot.ring,
      echo: this.options.echo,
      stateDir: this.options.stateDir,
    });
    slot.ring.clear();
    instance.onMessage = (message) => this.#liveness.onAppMessage(slot, instance, message);
    instance.start();
    return instance;
  }

  #onExit(slot: Slot, instance: Instance, info: ExitInfo): void {
    this.#proxy?.failed(instance.id);
    pidusage.clear();
    const reason = instance.stopReason ?? (info.spawnError !== undefined ? 'spawn-failed' : 'crash');
    const record: CrashRecord = {
      at: new Date().toISOString(),
      slot: slot.index,
      instanceId: instance.id,
      pid: instance.pid,
      reason,
      exitCode: info.code,
      signal: info.signal,
      uptimeMs: info.uptimeMs,
      rssAtDeath: instance.sample?.rss,
      reportPath: instance.reportPath,
      lastLines: slot.instance === instance ? slot.ring.lines(LAST_LINES) : [],
    };
    const planned = reason === 'stop' || reason === 'reload' || reason === 'replaced';
    this.#records.event('exited', slot, {
      instanceId: instance.id,
      pid: instance.pid,
      code: info.code,
      signal: info.signal,
      reason,
      uptimeMs: info.uptimeMs,
    });
    if (slot.instance !== instance) {
      // A replaced instance (reload, or a new instance that failed its reload probes).
      if (!planned) this.#records.crash(record);
      this.#records.persist();
      return;
    }
    if (this.#stopping()) {
      slot.state = 'stopped';
      this.#records.persist();
      return;
    }
    slot.lastExit = record;
    if (
      instance.stopReason === undefined &&
      info.code !== null &&
      this.options.finalExitCodes.includes(info.code)
    ) {
      this.#records.crash(record);
      slot.state = 'stopped';
      this.#logger.error(
        { slot: slot.index, code: info.code, lastLines: record.lastLines.slice(-5) },
        `the app exited with ${info.code}, which means "do not restart": not restarting it`,
      );
      this.#records.event('stopped-by-exit-code', slot, { code: info.code });
      this.#records.persist();
      if (this.#slots.every((s) => s.state === 'stopped')) this.#onAllStopped?.(info.code);
      return;
    }
    this.#afterFailure(slot, record);
  }

  /** Records an unplanned end and restarts (after the backoff), or parks the slot. */
  #afterFailure(slot: Slot, record: CrashRecord): void {
    this.#records.crash(record);
    this.metrics.restarts.inc({ reason: record.reason });
    if (slot.state === 'parked') {
      this.#scheduleParkProbe(slot);
      this.#records.persist();
      return;
    }
    const decision = slot.policy.next(Date.now(), record.uptimeMs);
    if (decision.action === 'park') {
      slot.state = 'parked';
      this.#logger.error(
        {
          slot: slot.index,
          restartsInWindow: decision.restartsInWindow,
          windowMs: this.options.restartWindowMs,
          lastLines: record.lastLines.slice(-5),
        },
        `the app keeps failing (${decision.restartsInWindow} restarts in ${this.options.restartWindowMs} ms): parked, trying again every ${this.options.parkProbeMs} ms or on reload`,
      );
      this.#records.event('parked', slot, {
        restartsInWindow: decision.restartsInWindow,
        lastReason: record.reason,
      });
      this.#scheduleParkProbe(slot);
    } else {
      slot.state = 'backoff';
      slot.restarts += 1;
      this.#logger.warn(
        { slot: slot.index, reason: record.reason, code: record.exitCode, signal: record.signal },
        `app ${record.reason === 'crash' ? 'exited' : record.reason}: restarting ${decision.delayMs === 0 ? 'now' : `in ${decision.delayMs} ms`} (restart ${decision.streak} in a row)`,
      );
      this.#records.event('restarting', slot, {
        reason: record.reason,
        delayMs: decision.delayMs,
        streak: decision.streak,
      });
      if (decision.delayMs === 0) void this.#launch(slot, record.reason);
      else slot.timer = setTimeout(() => void this.#launch(slot, record.reason), decision.delayMs);
    }
    this.#records.persist();
  }

  #scheduleParkProbe(slot: Slot): void {
    if (this.#stopping()) return;
    clearTimeout(slot.timer);
    slot.timer = setTimeout(() => {
      this.#records.event('park-probe', slot);
      void this.#launch(slot, 'park-probe');
    }, this.options.parkProbeMs);
  }

  // ---- reload ---------------------------------------------------------------------------------------

  /**
   * Rolling reload ({@link rollingReload}): a new instance per slot must become ready and pass
   * `reloadProbes` liveness probes in a row; only then is the old one drained and stopped. If any
   * new instance fails, every new one is drained and stopped and the old ones keep serving
   * (rollback). Direct mode with `--balance proxy` cannot run two instances on one port: the app
   * is restarted.
   */
  async reload(): Promise<ReloadResult> {
    if (this.#state === 'reloading' || this.#stopping())
      throw bulwarkError('BWK_ERR_SUPERVISOR_BUSY', { state: this.#state });
    this.#state = 'reloading';
    const started = Date.now();
    this.#records.event('reload-started');
    try {
      const result =
        this.options.instances === undefined && this.#front.socket === undefined
          ? await restartDirect(this.#context, started)
          : await rollingReload(this.#context, started);
      this.#lastReload = result;
      this.metrics.reloads.inc({ outcome: result.ok ? 'succeeded' : 'rolled_back' });
      this.#records.event(result.ok ? 'reload-succeeded' : 'reload-rolled-back', undefined, {
        detail: result.detail,
        durationMs: result.durationMs,
      });
      if (result.ok) this.#logger.info({ durationMs: result.durationMs }, `reload done: ${result.detail}`);
      else this.#logger.error({ durationMs: result.durationMs }, `reload rolled back: ${result.detail}`);
      return result;
    } finally {
      if (this.#state === 'reloading') this.#state = 'running';
      this.#records.persist();
    }
  }

  // ---- stopping ----------------------------------------------------------------------------------------

  /**
   * Ends an instance gracefully: out of the proxy's rotation (drained), or off the shared socket
   * (its in-flight requests answered, its connections closed), then SIGTERM to its processes.
   */
  async #retire(instance: Instance, reason: string): Promise<void> {
    instance.stopReason ??= reason;
    await this.#proxy?.drain(instance.id, this.options.stopTimeoutMs);
    await instance.drain(this.options.stopTimeoutMs);
    await instance.stop(reason, this.options.stopTimeoutMs);
  }

  #stopping(): boolean {
    return this.#state === 'stopping' || this.#state === 'stopped';
  }

  /** Stops accepting (cluster mode), stops every app's processes, persists the final state. */
  async stop(): Promise<void> {
    if (this.#stopping()) return;
    this.#state = 'stopping';
    this.#records.event('stopping');
    this.#liveness.stop();
    for (const slot of this.#slots) clearTimeout(slot.timer);
    await Promise.all(
      this.#slots.map(async (slot) => {
        const instance = slot.instance;
        if (instance === undefined) return;
        await this.#retire(instance, 'stop');
      }),
    );
    await closeFront(this.#front);
    for (const slot of this.#slots) {
      slot.state = 'stopped';
      slot.log.close();
    }
    this.#state = 'stopped';
    this.#records.event('stopped');
    await this.#records.close();
  }

  /** The exit code the process should end with after stop(). */
  get exitCode(): number {
    return this.#exitCode ?? 0;
  }

  set exitCode(code: number) {
    this.#exitCode = code;
  }
}

import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pidusage from 'pidusage';
import type { Logger } from 'pino';
import { bulwarkError, isBulwarkError } from '../errors/index.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { captureHangReport } from './diagnostics.js';
import { Instance, type ExitInfo } from './instance.js';
import { OutputRing, RotatingLog } from './logs.js';
import { SupervisorMetrics } from './metrics.js';
import type { SuperviseOptions } from './options.js';
import { RestartPolicy } from './policy.js';
import { PressureLadder, type PressureEvent } from './pressure.js';
import type { AppMessage } from './protocol.js';
import type { ClusterProxy } from './proxy.js';

/** A slot's state: one app process is wanted per slot. */
export type SlotState = 'starting' | 'running' | 'backoff' | 'parked' | 'stopped';

/** What is kept of an instance that ended without being asked to. */
export interface CrashRecord {
  at: string;
  slot: number;
  instanceId: string;
  pid: number | undefined;
  reason: string;
  exitCode: number | null;
  signal: string | null;
  uptimeMs: number;
  /** RSS at the last sample before it died, in bytes. */
  rssAtDeath: number | undefined;
  reportPath: string | undefined;
  lastLines: string[];
}

/** One graded recovery step and how it went. */
export interface RecoveryRecord {
  at: string;
  slot: number;
  instanceId: string;
  resource: 'memory' | 'cpu';
  step: 'warn' | 'soft' | 'medium' | 'hard';
  before: number;
  after?: number;
  helped?: boolean;
  /** What the app reported doing (soft and medium). */
  actions?: string[];
}

/** A supervisor event (also logged, counted in metrics and kept in a ring). */
export interface SupervisorEvent {
  at: string;
  type: string;
  slot?: number;
  instanceId?: string;
  detail?: Record<string, unknown>;
}

/** The result of a rolling reload. */
export interface ReloadResult {
  ok: boolean;
  at: string;
  durationMs: number;
  detail: string;
  instances: string[];
}

interface Slot {
  index: number;
  state: SlotState;
  instance: Instance | undefined;
  generation: number;
  policy: RestartPolicy;
  log: RotatingLog;
  ring: OutputRing;
  timer: NodeJS.Timeout | undefined;
  restarts: number;
  lastExit: CrashRecord | undefined;
  memory: PressureLadder | undefined;
  cpu: PressureLadder | undefined;
  cpuSamples: { at: number; cpu: number }[];
  probeFailures: number;
  probeWarned: boolean;
  hanging: boolean;
}

const CRASHES_KEPT = 50;
const EVENTS_KEPT = 500;
const RECOVERIES_KEPT = 200;
const LAST_LINES = 50;

/** Options of {@link Supervisor} beyond the CLI's. */
export interface SupervisorDeps {
  logger: Logger;
  /** Replaced in tests. */
  now?: () => number;
}

/**
 * `bulwark supervise`: keeps the app running. Direct mode (no `instances`): one process that
 * listens on the public port itself. Cluster mode: `instances` processes on internal ports behind
 * {@link ClusterProxy} on the public port, so a dead or replaced instance costs no request.
 */
export class Supervisor {
  readonly options: SuperviseOptions;
  readonly metrics: SupervisorMetrics;
  readonly #logger: Logger;
  readonly #slots: Slot[] = [];
  #proxy: ClusterProxy | undefined;
  readonly #crashes: CrashRecord[] = [];
  readonly #events: SupervisorEvent[] = [];
  readonly #recoveries: RecoveryRecord[] = [];
  readonly #timers: NodeJS.Timeout[] = [];
  readonly startedAt = Date.now();
  #state: 'starting' | 'running' | 'reloading' | 'stopping' | 'stopped' = 'starting';
  #lastReload: ReloadResult | undefined;
  #persistTimer: NodeJS.Timeout | undefined;
  #persisting: Promise<void> = Promise.resolve();
  #exitCode: number | undefined;
  #onAllStopped: ((code: number) => void) | undefined;

  constructor(options: SuperviseOptions, deps: SupervisorDeps) {
    this.options = options;
    this.#logger = deps.logger;
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
    for (let index = 0; index < count; index++) {
      const name = options.instances === undefined ? 'app.log' : `app-${index}.log`;
      this.#slots.push({
        index,
        state: 'starting',
        instance: undefined,
        generation: 0,
        policy: new RestartPolicy({
          initialMs: options.backoffInitialMs,
          maxMs: options.backoffMaxMs,
          stableMs: options.stableMs,
          maxRestarts: options.maxRestarts,
          windowMs: options.restartWindowMs,
        }),
        log: new RotatingLog({
          file: path.join(options.stateDir, 'logs', name),
          maxBytes: options.logMaxBytes,
          keep: options.logKeep,
        }),
        ring: new OutputRing(64 * 1024),
        timer: undefined,
        restarts: 0,
        lastExit: undefined,
        memory: undefined,
        cpu: undefined,
        cpuSamples: [],
        probeFailures: 0,
        probeWarned: false,
        hanging: false,
      });
    }
  }

  get state(): string {
    return this.#state;
  }

  /** The public port (cluster mode: the proxy's, once listening). */
  get port(): number {
    return this.#publicPort ?? this.options.port;
  }

  #publicPort: number | undefined;

  /** Resolves with the exit code once every slot stopped for good (exit codes that mean "do not restart"). */
  onAllStopped(fn: (code: number) => void): void {
    this.#onAllStopped = fn;
  }

  /** Starts every slot; resolves once each has had its first start attempt. */
  async start(): Promise<void> {
    await mkdir(this.options.stateDir, { recursive: true });
    await this.#loadHistory();
    if (this.options.instances !== undefined) {
      // Loaded only in cluster mode: direct mode never has the proxy in its process.
      const { ClusterProxy } = await import('./proxy.js');
      this.#proxy = new ClusterProxy({
        port: this.options.port,
        host: this.options.host,
        holdMs: this.options.holdMs,
        logger: this.#logger,
      });
      this.#publicPort = await this.#proxy.listen();
    }
    this.#event('started', undefined, {
      mode: this.options.instances === undefined ? 'direct' : 'cluster',
      instances: this.#slots.length,
      port: this.port,
      command: this.options.command,
    });
    this.#timers.push(setInterval(() => this.#checkHeartbeats(), 100));
    this.#timers.push(setInterval(() => void this.#probeLiveness(), this.options.probeIntervalMs));
    this.#timers.push(setInterval(() => void this.#sample(), this.options.sampleMs));
    for (const timer of this.#timers) timer.unref();
    await Promise.all(this.#slots.map((slot) => this.#launch(slot, 'start')));
    if (this.#state === 'starting') this.#state = 'running';
    this.#persist();
  }

  /** Everything `bulwark supervise status` and the admin API show. */
  status(): Record<string, unknown> {
    return {
      pid: process.pid,
      state: this.#state,
      mode: this.options.instances === undefined ? 'direct' : 'cluster',
      port: this.port,
      host: this.options.host,
      command: this.options.command,
      startedAt: new Date(this.startedAt).toISOString(),
      uptimeMs: Date.now() - this.startedAt,
      stateDir: this.options.stateDir,
      instances: this.#slots.map((slot) => ({
        slot: slot.index,
        state: slot.state,
        id: slot.instance?.id,
        pid: slot.instance?.pid,
        port: slot.instance?.port,
        instanceState: slot.instance?.state,
        startedAt: slot.instance?.startedAt ? new Date(slot.instance.startedAt).toISOString() : undefined,
        readyAt: slot.instance?.readyAt ? new Date(slot.instance.readyAt).toISOString() : undefined,
        uptimeMs: slot.instance?.uptimeMs,
        heartbeat: slot.instance?.ipc === true,
        restarts: slot.restarts,
        restartsInWindow: slot.policy.restartsInWindow(Date.now()),
        rss: slot.instance?.sample?.rss,
        cpu: slot.instance?.sample?.cpu,
        log: slot.log.file,
      })),
      proxy: this.#proxy?.stats(),
      lastReload: this.#lastReload,
      crashes: this.#crashes.slice(-20),
      recoveries: this.#recoveries.slice(-50),
    };
  }

  /** The last events (at most 500), oldest first. */
  events(since?: string): SupervisorEvent[] {
    return since === undefined ? [...this.#events] : this.#events.filter((e) => e.at > since);
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
      this.#event('start-failed', slot, { reason: (error as Error).message });
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
    this.#event('spawned', slot, { pid: instance.pid, port: instance.port, reason });
    void instance.exited.then((info) => this.#onExit(slot, instance, info));
    try {
      await instance.waitReady(this.options.readyPath, this.options.startTimeoutMs);
    } catch (error) {
      if (instance.state !== 'exited') {
        this.#event('start-timeout', slot, { pid: instance.pid, timeoutMs: this.options.startTimeoutMs });
        await instance.stop('start-timeout', this.options.stopTimeoutMs);
      }
      void error;
      return false;
    }
    if (slot.instance !== instance || this.#stopping()) return false;
    slot.state = 'running';
    this.#resetHealth(slot);
    this.#proxy?.add({ id: instance.id, port: instance.port });
    this.#event(parked ? 'unparked' : 'ready', slot, {
      pid: instance.pid,
      startupMs: (instance.readyAt ?? Date.now()) - instance.startedAt,
    });
    if (parked) slot.policy.reset();
    this.#persist();
    return true;
  }

  async #spawn(slot: Slot): Promise<Instance> {
    slot.generation += 1;
    const direct = this.options.instances === undefined;
    const port = direct ? this.options.port : await freePort('127.0.0.1');
    if (direct) await this.#ensurePortFree(port);
    const instance = new Instance({
      id: `${slot.index}.${slot.generation}`,
      slot: slot.index,
      command: this.options.command,
      env: { ...process.env, ...this.options.env },
      port,
      host: direct ? this.options.host : '127.0.0.1',
      inspectPort: await freePort('127.0.0.1'),
      heartbeatMs: Math.max(25, Math.min(1000, Math.floor(this.options.heartbeatTimeoutMs / 4))),
      log: slot.log,
      ring: slot.ring,
      echo: this.options.echo,
      stateDir: this.options.stateDir,
      behindProxy: !direct,
    });
    slot.ring.clear();
    instance.onMessage = (message) => this.#onAppMessage(slot, instance, message);
    instance.start();
    return instance;
  }

  /** Direct mode: the app binds the public port itself, so it must be free (an orphan may hold it). */
  async #ensurePortFree(port: number): Promise<void> {
    const started = Date.now();
    const waitMs = Math.min(5_000, this.options.stopTimeoutMs);
    for (;;) {
      if (await portIsFree(this.options.host, port)) return;
      if (Date.now() - started > waitMs)
        throw bulwarkError('BWK_ERR_SUPERVISOR_PORT_BUSY', {
          port,
          waitedMs: Date.now() - started,
          holder: 'another process (not one this supervisor started)',
        });
      await sleep(25);
    }
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
    this.#event('exited', slot, {
      instanceId: instance.id,
      pid: instance.pid,
      code: info.code,
      signal: info.signal,
      reason,
      uptimeMs: info.uptimeMs,
    });
    if (slot.instance !== instance) {
      // A replaced instance (reload, or a new instance that failed its reload probes).
      if (!planned) this.#remember(record);
      this.#persist();
      return;
    }
    if (this.#stopping()) {
      slot.state = 'stopped';
      this.#persist();
      return;
    }
    slot.lastExit = record;
    if (
      instance.stopReason === undefined &&
      info.code !== null &&
      this.options.finalExitCodes.includes(info.code)
    ) {
      this.#remember(record);
      slot.state = 'stopped';
      this.#logger.error(
        { slot: slot.index, code: info.code, lastLines: record.lastLines.slice(-5) },
        `the app exited with ${info.code}, which means "do not restart": not restarting it`,
      );
      this.#event('stopped-by-exit-code', slot, { code: info.code });
      this.#persist();
      if (this.#slots.every((s) => s.state === 'stopped')) this.#onAllStopped?.(info.code);
      return;
    }
    this.#afterFailure(slot, record);
  }

  /** Records an unplanned end and restarts (after the backoff), or parks the slot. */
  #afterFailure(slot: Slot, record: CrashRecord): void {
    this.#remember(record);
    this.metrics.restarts.inc({ reason: record.reason });
    if (slot.state === 'parked') {
      this.#scheduleParkProbe(slot);
      this.#persist();
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
      this.#event('parked', slot, { restartsInWindow: decision.restartsInWindow, lastReason: record.reason });
      this.#scheduleParkProbe(slot);
    } else {
      slot.state = 'backoff';
      slot.restarts += 1;
      this.#logger.warn(
        { slot: slot.index, reason: record.reason, code: record.exitCode, signal: record.signal },
        `app ${record.reason === 'crash' ? 'exited' : record.reason}: restarting ${decision.delayMs === 0 ? 'now' : `in ${decision.delayMs} ms`} (restart ${decision.streak} in a row)`,
      );
      this.#event('restarting', slot, {
        reason: record.reason,
        delayMs: decision.delayMs,
        streak: decision.streak,
      });
      if (decision.delayMs === 0) void this.#launch(slot, record.reason);
      else slot.timer = setTimeout(() => void this.#launch(slot, record.reason), decision.delayMs);
    }
    this.#persist();
  }

  #scheduleParkProbe(slot: Slot): void {
    if (this.#stopping()) return;
    clearTimeout(slot.timer);
    slot.timer = setTimeout(() => {
      this.#event('park-probe', slot);
      void this.#launch(slot, 'park-probe');
    }, this.options.parkProbeMs);
  }

  #remember(record: CrashRecord): void {
    this.#crashes.push(record);
    if (this.#crashes.length > CRASHES_KEPT) this.#crashes.splice(0, this.#crashes.length - CRASHES_KEPT);
  }

  // ---- liveness ------------------------------------------------------------------------------------

  #resetHealth(slot: Slot): void {
    slot.probeFailures = 0;
    slot.probeWarned = false;
    slot.hanging = false;
    slot.cpuSamples = [];
    const { maxMemoryMb, maxCpuPercent, pressureWarnAt, pressureActAt, recoveryDwellMs } = this.options;
    const ladder = (limit: number, hardAtLimit: boolean) =>
      new PressureLadder({
        limit,
        warnAt: pressureWarnAt,
        actAt: pressureActAt,
        dwellMs: recoveryDwellMs,
        hardAtLimit,
      });
    slot.memory = maxMemoryMb === undefined ? undefined : ladder(maxMemoryMb * 1024 * 1024, true);
    slot.cpu = maxCpuPercent === undefined ? undefined : ladder(maxCpuPercent, false);
  }

  /** An app that speaks IPC and stopped sending heartbeats has a blocked event loop. */
  #checkHeartbeats(): void {
    const now = Date.now();
    for (const slot of this.#slots) {
      const instance = slot.instance;
      if (instance === undefined || instance.state !== 'ready' || !instance.ipc || slot.hanging) continue;
      const silentMs = now - instance.lastHeartbeat;
      if (silentMs > this.options.heartbeatTimeoutMs) void this.#hung(slot, instance, 'hung', { silentMs });
    }
  }

  /**
   * HTTP liveness. Failing probes with heartbeats still arriving mean slow requests, not a hang:
   * logged once, no restart. Without heartbeats (an app that does not speak IPC), `probeFailures`
   * failures in a row make it unresponsive.
   */
  async #probeLiveness(): Promise<void> {
    await Promise.all(
      this.#slots.map(async (slot) => {
        const instance = slot.instance;
        if (instance === undefined || instance.state !== 'ready' || slot.hanging) return;
        const status = await instance.probe(this.options.livePath, this.options.probeTimeoutMs);
        if (slot.instance !== instance || instance.state !== 'ready') return;
        if (status !== undefined && status < 500) {
          if (slot.probeWarned) this.#event('probe-recovered', slot);
          slot.probeFailures = 0;
          slot.probeWarned = false;
          return;
        }
        slot.probeFailures += 1;
        if (slot.probeFailures < this.options.probeFailures) return;
        const heartbeatAge = Date.now() - instance.lastHeartbeat;
        if (instance.ipc && heartbeatAge <= this.options.heartbeatTimeoutMs) {
          if (!slot.probeWarned) {
            slot.probeWarned = true;
            this.#logger.warn(
              { slot: slot.index, failures: slot.probeFailures, heartbeatAgeMs: heartbeatAge },
              'liveness probe failing but the event loop is alive (slow requests?): not restarting',
            );
            this.#event('probe-failing', slot, { failures: slot.probeFailures, status });
          }
          return;
        }
        await this.#hung(slot, instance, 'unresponsive', { failures: slot.probeFailures, status });
      }),
    );
  }

  async #hung(
    slot: Slot,
    instance: Instance,
    reason: string,
    detail: Record<string, unknown>,
  ): Promise<void> {
    if (slot.hanging) return;
    slot.hanging = true;
    this.#proxy?.remove(instance.id);
    this.#logger.error(
      { slot: slot.index, pid: instance.pid, ...detail },
      `app ${reason}: capturing a report, then restarting`,
    );
    this.#event(reason, slot, { pid: instance.pid, ...detail });
    if (instance.ipc && instance.pid !== undefined) {
      try {
        instance.reportPath = await captureHangReport({
          pid: instance.pid,
          inspectPort: instance.inspectPort,
          dir: path.join(this.options.stateDir, 'reports'),
          timeoutMs: 3_000,
        });
        this.#event('report', slot, { path: instance.reportPath });
      } catch (error) {
        this.#logger.warn({ err: error, slot: slot.index }, 'could not capture a diagnostic report');
      }
    }
    await instance.kill(reason);
  }

  // ---- resources -------------------------------------------------------------------------------------

  async #sample(): Promise<void> {
    await Promise.all(
      this.#slots.map(async (slot) => {
        const instance = slot.instance;
        const pid = instance?.pid;
        if (instance === undefined || pid === undefined || instance.state !== 'ready') return;
        let usage: { memory: number; cpu: number };
        try {
          usage = await pidusage(pid);
        } catch {
          return; // exited meanwhile
        }
        const now = Date.now();
        instance.sample = { at: now, rss: usage.memory, cpu: usage.cpu };
        if (slot.instance !== instance || slot.hanging) return;
        if (slot.memory !== undefined)
          this.#onPressure(slot, instance, 'memory', slot.memory.observe(now, usage.memory));
        if (slot.cpu !== undefined) {
          slot.cpuSamples.push({ at: now, cpu: usage.cpu });
          while ((slot.cpuSamples[0]?.at ?? now) < now - this.options.cpuWindowMs) slot.cpuSamples.shift();
          // Judge sustained use only: a full window of samples.
          const first = slot.cpuSamples[0]?.at ?? now;
          if (now - first >= this.options.cpuWindowMs - this.options.sampleMs * 1.5) {
            const mean = slot.cpuSamples.reduce((sum, s) => sum + s.cpu, 0) / slot.cpuSamples.length;
            this.#onPressure(slot, instance, 'cpu', slot.cpu.observe(now, mean));
          }
        }
      }),
    );
  }

  #onPressure(slot: Slot, instance: Instance, resource: 'memory' | 'cpu', events: PressureEvent[]): void {
    const limit =
      resource === 'memory'
        ? (this.options.maxMemoryMb ?? 0) * 1024 * 1024
        : (this.options.maxCpuPercent ?? 0);
    const show = (value: number) =>
      resource === 'memory' ? `${Math.round(value / 1048576)} MiB` : `${Math.round(value)}%`;
    for (const event of events) {
      const base = { at: new Date().toISOString(), slot: slot.index, instanceId: instance.id, resource };
      if (event.kind === 'warn') {
        this.#logger.warn(
          { slot: slot.index, resource, value: event.value },
          `${resource} at ${show(event.value)}: above the warning level`,
        );
        this.#recovery({ ...base, step: 'warn', before: event.value });
        this.#event('pressure-warn', slot, { resource, value: event.value });
      } else if (event.kind === 'clear') {
        instance.send({ type: 'bulwark:recover', level: 'normal', resource, value: event.value, limit });
        this.#event('pressure-clear', slot, { resource, value: event.value });
      } else if (event.kind === 'judged') {
        const record = [...this.#recoveries]
          .reverse()
          .find((r) => r.instanceId === instance.id && r.resource === resource && r.step === event.step);
        if (record !== undefined) {
          record.after = event.after;
          record.helped = event.helped;
        }
        this.metrics.recoveryOutcomes.inc({
          resource,
          step: event.step,
          outcome: event.helped ? 'helped' : 'escalated',
        });
        this.#event('recovery-judged', slot, {
          resource,
          step: event.step,
          before: event.before,
          after: event.after,
          helped: event.helped,
        });
        if (event.helped)
          instance.send({ type: 'bulwark:recover', level: 'normal', resource, value: event.after, limit });
      } else {
        this.metrics.recoverySteps.inc({ resource, step: event.step });
        this.#recovery({ ...base, step: event.step, before: event.value });
        this.#logger.warn(
          { slot: slot.index, resource, step: event.step, value: event.value },
          `${resource} at ${show(event.value)} (limit ${show(limit)}): ${event.step} recovery`,
        );
        this.#event('recovery', slot, { resource, step: event.step, value: event.value });
        if (event.step === 'hard') void this.#hardRecovery(slot, instance, resource);
        else
          instance.send({ type: 'bulwark:recover', level: event.step, resource, value: event.value, limit });
      }
    }
  }

  #recovery(record: RecoveryRecord): void {
    this.#recoveries.push(record);
    if (this.#recoveries.length > RECOVERIES_KEPT)
      this.#recoveries.splice(0, this.#recoveries.length - RECOVERIES_KEPT);
    this.#persist();
  }

  /** Hard: out of rotation, drained, stopped gracefully; the restart follows as for any exit. */
  async #hardRecovery(slot: Slot, instance: Instance, resource: 'memory' | 'cpu'): Promise<void> {
    await this.#proxy?.drain(instance.id, this.options.stopTimeoutMs);
    await instance.stop(resource, this.options.stopTimeoutMs);
  }

  #onAppMessage(slot: Slot, instance: Instance, message: AppMessage): void {
    if (message.type !== 'bulwark:recovered') return;
    const record = [...this.#recoveries]
      .reverse()
      .find((r) => r.instanceId === instance.id && r.step === message.level);
    if (record !== undefined) record.actions = message.actions;
    this.#event('app-recovered', slot, { level: message.level, actions: message.actions });
    this.#persist();
  }

  // ---- reload ---------------------------------------------------------------------------------------

  /**
   * Rolling reload. Cluster mode: a new instance per slot must become ready and pass
   * `reloadProbes` liveness probes in a row; only then does it take traffic and the old one is
   * drained and stopped. If any new instance fails, every new one is stopped and the old ones keep
   * serving (rollback). Direct mode cannot run two instances on one port: the app is restarted.
   */
  async reload(): Promise<ReloadResult> {
    if (this.#state === 'reloading' || this.#stopping())
      throw bulwarkError('BWK_ERR_SUPERVISOR_BUSY', { state: this.#state });
    this.#state = 'reloading';
    const started = Date.now();
    this.#event('reload-started');
    try {
      const result =
        this.options.instances === undefined
          ? await this.#restartAll(started)
          : await this.#rollingReload(started);
      this.#lastReload = result;
      this.metrics.reloads.inc({ outcome: result.ok ? 'succeeded' : 'rolled_back' });
      this.#event(result.ok ? 'reload-succeeded' : 'reload-rolled-back', undefined, {
        detail: result.detail,
        durationMs: result.durationMs,
      });
      if (result.ok) this.#logger.info({ durationMs: result.durationMs }, `reload done: ${result.detail}`);
      else this.#logger.error({ durationMs: result.durationMs }, `reload rolled back: ${result.detail}`);
      return result;
    } finally {
      if (this.#state === 'reloading') this.#state = 'running';
      this.#persist();
    }
  }

  async #rollingReload(started: number): Promise<ReloadResult> {
    const fresh: { slot: Slot; instance: Instance }[] = [];
    const failures: string[] = [];
    await Promise.all(
      this.#slots.map(async (slot) => {
        let instance: Instance;
        try {
          instance = await this.#spawn(slot);
        } catch (error) {
          failures.push(`slot ${slot.index}: ${(error as Error).message}`);
          return;
        }
        fresh.push({ slot, instance });
        void instance.exited.then((info) => this.#onExit(slot, instance, info));
        try {
          await instance.waitReady(this.options.readyPath, this.options.startTimeoutMs);
          for (let passed = 0; passed < this.options.reloadProbes;) {
            await sleep(Math.min(this.options.probeIntervalMs, 250));
            const status = await instance.probe(this.options.livePath, this.options.probeTimeoutMs);
            if (status === undefined || status >= 500 || instance.state !== 'ready')
              throw new Error(
                `liveness probe ${passed + 1} of ${this.options.reloadProbes} failed (${status ?? 'no answer'})`,
              );
            passed += 1;
          }
        } catch (error) {
          const lines = slot.ring.lines(5).join(' | ');
          failures.push(
            `instance ${instance.id}: ${(error as Error).message}${lines === '' ? '' : ` (last output: ${lines})`}`,
          );
        }
      }),
    );
    if (failures.length > 0 || this.#stopping()) {
      await Promise.all(
        fresh.map(({ instance }) => instance.stop('reload-failed', this.options.stopTimeoutMs)),
      );
      return {
        ok: false,
        at: new Date().toISOString(),
        durationMs: Date.now() - started,
        detail: failures.join('; ') || 'stopping',
        instances: this.#slots.map((s) => s.instance?.id ?? '-'),
      };
    }
    const old: Instance[] = [];
    for (const { slot, instance } of fresh) {
      const previous = slot.instance;
      slot.instance = instance;
      slot.state = 'running';
      slot.policy.reset();
      clearTimeout(slot.timer);
      this.#resetHealth(slot);
      this.#proxy?.add({ id: instance.id, port: instance.port });
      if (previous !== undefined && previous.state !== 'exited') old.push(previous);
    }
    await Promise.all(
      old.map(async (instance) => {
        instance.stopReason = 'reload';
        await this.#proxy?.drain(instance.id, this.options.stopTimeoutMs);
        await instance.stop('reload', this.options.stopTimeoutMs);
      }),
    );
    return {
      ok: true,
      at: new Date().toISOString(),
      durationMs: Date.now() - started,
      detail: `${fresh.length} new instance(s) passed ${this.options.reloadProbes} probes; ${old.length} old drained and stopped`,
      instances: fresh.map((f) => f.instance.id),
    };
  }

  async #restartAll(started: number): Promise<ReloadResult> {
    const slot = this.#slots[0];
    if (slot === undefined) throw new Error('no slot');
    const previous = slot.instance;
    clearTimeout(slot.timer);
    if (previous !== undefined && previous.state !== 'exited') {
      slot.instance = undefined;
      await previous.stop('reload', this.options.stopTimeoutMs);
    }
    slot.policy.reset();
    slot.state = 'starting';
    const ok = await this.#launch(slot, 'reload');
    return {
      ok,
      at: new Date().toISOString(),
      durationMs: Date.now() - started,
      detail: ok
        ? 'restarted (direct mode has one process on the port; use --instances for reloads without downtime)'
        : `the new instance did not become ready (${slot.lastExit?.lastLines.slice(-3).join(' | ') ?? 'no output'})`,
      instances: [slot.instance?.id ?? '-'],
    };
  }

  // ---- stopping ----------------------------------------------------------------------------------------

  #stopping(): boolean {
    return this.#state === 'stopping' || this.#state === 'stopped';
  }

  /** Stops accepting (cluster mode), stops every app process group, persists the final state. */
  async stop(): Promise<void> {
    if (this.#stopping()) return;
    this.#state = 'stopping';
    this.#event('stopping');
    for (const timer of this.#timers) clearInterval(timer);
    for (const slot of this.#slots) clearTimeout(slot.timer);
    await Promise.all(
      this.#slots.map(async (slot) => {
        const instance = slot.instance;
        if (instance === undefined) return;
        await this.#proxy?.drain(instance.id, this.options.stopTimeoutMs);
        await instance.stop('stop', this.options.stopTimeoutMs);
      }),
    );
    await this.#proxy?.close();
    for (const slot of this.#slots) {
      slot.state = 'stopped';
      slot.log.close();
    }
    this.#state = 'stopped';
    this.#event('stopped');
    clearTimeout(this.#persistTimer);
    await this.#persisting;
    await this.#writeState();
  }

  /** The exit code the process should end with after stop(). */
  get exitCode(): number {
    return this.#exitCode ?? 0;
  }

  set exitCode(code: number) {
    this.#exitCode = code;
  }

  // ---- records ---------------------------------------------------------------------------------------

  #event(type: string, slot?: Slot, detail?: Record<string, unknown>): void {
    const event: SupervisorEvent = {
      at: new Date().toISOString(),
      type,
      ...(slot === undefined ? {} : { slot: slot.index, instanceId: slot.instance?.id }),
      ...(detail === undefined ? {} : { detail }),
    };
    this.#events.push(event);
    if (this.#events.length > EVENTS_KEPT) this.#events.splice(0, this.#events.length - EVENTS_KEPT);
    this.metrics.events.inc({ type });
    this.#logger.debug({ event: type, slot: slot?.index, ...detail }, `supervisor event ${type}`);
  }

  get #stateFile(): string {
    return path.join(this.options.stateDir, 'state.json');
  }

  /** Keeps the crash history of earlier runs. */
  async #loadHistory(): Promise<void> {
    try {
      const previous = JSON.parse(await readFile(this.#stateFile, 'utf8')) as { crashes?: CrashRecord[] };
      if (Array.isArray(previous.crashes)) this.#crashes.push(...previous.crashes.slice(-CRASHES_KEPT));
    } catch {
      // No earlier state, or unreadable: start a fresh history.
    }
  }

  /** Writes state.json soon (coalesced), atomically. */
  #persist(): void {
    if (this.#persistTimer !== undefined || this.#state === 'stopped') return;
    this.#persistTimer = setTimeout(() => {
      this.#persistTimer = undefined;
      this.#persisting = this.#persisting.then(() => this.#writeState());
    }, 20);
  }

  async #writeState(): Promise<void> {
    try {
      await writeFileAtomic(
        this.#stateFile,
        `${JSON.stringify({ ...this.status(), crashes: this.#crashes }, null, 2)}\n`,
      );
    } catch (error) {
      this.#logger.warn({ err: error }, 'could not write the supervisor state file');
    }
  }
}

/** True when `port` can be bound on `host` now. */
export function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port the OS has free now on `host`. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

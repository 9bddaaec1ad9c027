import type { Logger } from 'pino';
import path from 'node:path';
import type { Instance } from './instance.js';
import { OutputRing, RotatingLog } from './logs.js';
import type { SuperviseOptions } from './options.js';
import { RestartPolicy } from './policy.js';
import { PressureLadder } from './pressure.js';
import type { CrashRecord } from './record-types.js';

/** A slot's state: one app process is wanted per slot. */
export type SlotState = 'starting' | 'running' | 'backoff' | 'parked' | 'stopped';

/**
 * One place for an app process: the instance in it now, its restart policy, its log and recent
 * output, and the health state of the current instance (reset by {@link resetHealth} whenever a
 * new instance takes the slot over).
 */
export interface Slot {
  index: number;
  state: SlotState;
  instance: Instance | undefined;
  /** Bumped on every spawn; the instance id is `<index>.<generation>`. */
  generation: number;
  policy: RestartPolicy;
  log: RotatingLog;
  ring: OutputRing;
  /** The pending restart or park probe. */
  timer: NodeJS.Timeout | undefined;
  restarts: number;
  lastExit: CrashRecord | undefined;
  memory: PressureLadder | undefined;
  cpu: PressureLadder | undefined;
  cpuSamples: { at: number; cpu: number }[];
  probeFailures: number;
  probeWarned: boolean;
  /** A liveness probe is under way (probes never overlap, even with a timeout above the interval). */
  probing: boolean;
  /** A hang is being handled (report, then kill): no further checks on this instance. */
  hanging: boolean;
}

/** Bytes of recent output kept per slot for crash records and reload failures. */
const RING_BYTES = 64 * 1024;

/** A fresh slot, `starting`, with no instance yet. Its log is `app.log` (cluster mode: `app-<index>.log`). */
export function createSlot(index: number, options: SuperviseOptions, logger: Logger): Slot {
  const name = options.instances === undefined ? 'app.log' : `app-${index}.log`;
  return {
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
      // Once per outage (disk full, directory gone): the app keeps running, its output is dropped.
      onError: (error) =>
        logger.error(
          { err: error, slot: index },
          'cannot write the app log: its output is dropped until it can',
        ),
    }),
    ring: new OutputRing(RING_BYTES),
    timer: undefined,
    restarts: 0,
    lastExit: undefined,
    memory: undefined,
    cpu: undefined,
    cpuSamples: [],
    probeFailures: 0,
    probeWarned: false,
    probing: false,
    hanging: false,
  };
}

/**
 * Starts the health state over for the instance that just took the slot: probe failures, the hang
 * flag, CPU samples, and new pressure ladders for the limits that are set (memory in bytes, asking
 * for `hard` at the limit; CPU in percent).
 */
export function resetHealth(slot: Slot, options: SuperviseOptions): void {
  slot.probeFailures = 0;
  slot.probeWarned = false;
  slot.hanging = false;
  slot.cpuSamples = [];
  const { maxMemoryMb, maxCpuPercent, pressureWarnAt, pressureActAt, recoveryDwellMs } = options;
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

/** A slot as `bulwark supervise status` shows it (times as ISO strings, RSS in bytes, CPU in percent). */
export function slotStatus(slot: Slot): Record<string, unknown> {
  return {
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
  };
}

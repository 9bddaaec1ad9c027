import { performance } from 'node:perf_hooks';

// Catch-up work after a failback (the queue spool's replay into BullMQ, the cache journal's replay
// into Redis) runs on the app's event loop while it serves: it moves one small step at a time and
// rests after each in proportion to how busy the app keeps the loop (issue 18,
// docs/benchmarks.md#failover-under-load). Runs at the same time share that time between them.

/**
 * The share of the time catch-up work may take when the event loop was idle during its last rest
 * (after a step that took t ms it rests t); it falls linearly with the loop's utilisation down to
 * {@link REPLAY_SHARE_BUSY}.
 */
export const REPLAY_SHARE_IDLE = 0.5;
/**
 * The share of the time catch-up work may take while the app keeps its event loop busy (after a
 * step that took t ms it rests 19t). Never zero, so a saturated app still catches up, slowly.
 */
export const REPLAY_SHARE_BUSY = 0.05;

/**
 * How long to rest after a step that took `tookMs` (ms, ≥ 1), given the event loop's utilisation
 * (0–1) while it last rested (the app's own load, the steps excluded) and the catch-up runs in
 * progress in the process, this one included: they split the share between them, so the spool's
 * replay and each cache's journal replay after one failback take a twentieth of a busy loop
 * together, not a twentieth each.
 */
export function replayRest(tookMs: number, utilisation: number, runs = 1): number {
  const load = Math.min(1, Math.max(0, Number.isFinite(utilisation) ? utilisation : 1));
  const share = Math.max(REPLAY_SHARE_BUSY, REPLAY_SHARE_IDLE * (1 - load)) / Math.max(1, runs);
  return Math.max(1, (Math.max(0, tookMs) * (1 - share)) / share);
}

/** Catch-up runs in progress in this process (a {@link Pacer} from its first step to its `end`). */
let runs = 0;

/** Catch-up runs in progress in this process. */
export function catchUpRuns(): number {
  return runs;
}

/**
 * The event loop's utilisation (0–1) since the previous call (the first call: since the process
 * started), from `performance.eventLoopUtilization()`.
 */
export function eventLoopLoad(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, last);
    last = now;
    return utilization;
  };
}

/** What paces the steps (see {@link replayRest}); every member has a real default (tests drive them). */
export interface ReplayPacing {
  /** Rests between steps, ms (default: a timer). */
  pause?: (ms: number) => Promise<void>;
  /** The event loop's utilisation (0–1) since the previous call (default {@link eventLoopLoad}). */
  load?: () => number;
  /** Monotonic clock timing each step, ms (default `performance.now`). */
  clock?: () => number;
}

const timer = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Paces one run of catch-up work: `start()` before each step, `rest()` after it, `end()` once the
 * run is over (until then it holds its part of the share; {@link paced} ends it).
 */
export class Pacer {
  readonly #pause: (ms: number) => Promise<void>;
  readonly #load: () => number;
  readonly #clock: () => number;
  // Right after a failback the app is usually at its busiest: the first rest assumes a busy loop.
  #utilisation = 1;
  #started = 0;
  #running = false;

  constructor(pacing: ReplayPacing = {}) {
    this.#pause = pacing.pause ?? timer;
    this.#load = pacing.load ?? eventLoopLoad();
    this.#clock = pacing.clock ?? (() => performance.now());
  }

  /** Marks the start of a step. */
  start(): void {
    if (!this.#running) {
      this.#running = true;
      runs += 1;
    }
    this.#started = this.#clock();
  }

  /** The run is over: its part of the share goes back to the runs still going. */
  end(): void {
    if (!this.#running) return;
    this.#running = false;
    runs -= 1;
  }

  /** Rests after the step begun by {@link start}, by {@link replayRest}. */
  async rest(): Promise<void> {
    const took = this.#clock() - this.#started;
    this.#load(); // read over the rest alone: the app's load, not the steps'
    await this.#pause(replayRest(took, this.#utilisation, runs));
    this.#utilisation = this.#load();
  }
}

/** Runs `body` as one run of catch-up work, paced by its {@link Pacer}, which it ends however `body` settles. */
export async function paced<T>(
  pacing: ReplayPacing | undefined,
  body: (pacer: Pacer) => Promise<T>,
): Promise<T> {
  const pacer = new Pacer(pacing);
  try {
    return await body(pacer);
  } finally {
    pacer.end();
  }
}

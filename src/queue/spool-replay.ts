import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Failover } from '../failover/index.js';
import { byQueue, type BullJobs } from './bullmq-jobs.js';
import type { BullQueues } from './bullmq-queues.js';
import type { SqlJobs } from './sql-jobs.js';

/** Spooled jobs looked at by `counts()` for jobs in both stores. */
export const REPLAY_BATCH = 500;
/**
 * Spooled jobs moved to BullMQ per step: one take, one `addBulk`, one delete. Small, because a step
 * runs between the app's requests on the same event loop and the same BullMQ connection as its adds
 * (issue 18, docs/benchmarks.md#failover-under-load): a step of 25 holds either for about a
 * millisecond, where 100 held them several times as long.
 */
export const REPLAY_STEP = 25;
/**
 * The share of the time the replay may take when the event loop was idle during its last rest
 * (after a step that took t ms it rests t); it falls linearly with the loop's utilisation down to
 * {@link REPLAY_SHARE_BUSY}.
 */
export const REPLAY_SHARE_IDLE = 0.5;
/**
 * The share of the time the replay may take while the app keeps its event loop busy (after a step
 * that took t ms it rests 19t). Never zero, so a saturated app still drains its spool, slowly.
 */
export const REPLAY_SHARE_BUSY = 0.05;

/**
 * How long the replay rests after a step that took `tookMs` (ms, ≥ 1), given the event loop's
 * utilisation (0–1) while it last rested: the app's own load, the replay's steps excluded.
 */
export function replayRest(tookMs: number, utilisation: number): number {
  const load = Math.min(1, Math.max(0, Number.isFinite(utilisation) ? utilisation : 1));
  const share = Math.max(REPLAY_SHARE_BUSY, REPLAY_SHARE_IDLE * (1 - load));
  return Math.max(1, (Math.max(0, tookMs) * (1 - share)) / share);
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

/** Options of {@link SpoolReplay}. Times in milliseconds. */
export interface SpoolReplayOptions {
  bull: BullQueues;
  bullJobs: BullJobs;
  /** The spool's table. */
  jobs: SqlJobs;
  failover: Failover;
  instanceId: string;
  /** Lease on a batch while it is being moved; past it (a crash) recovery gives it back to the spool. */
  leaseMs: number;
  /** Deadline of one batch's adds to BullMQ. */
  deadlineMs: number;
  now: () => number;
  /** Whether moving jobs to BullMQ is wanted now (the driver is open, the Redis switch is on). */
  wanted: () => boolean;
  /** Hears each queue a batch was added to. */
  reached: (queue: string) => void;
  logger?: Logger | undefined;
  /** Pacing of the steps; every member has a real default (tests drive them). */
  pacing?: ReplayPacing;
}

/** What paces the replay's steps (see {@link replayRest}). */
export interface ReplayPacing {
  /** Rests between steps, ms (default: a timer). */
  pause?: (ms: number) => Promise<void>;
  /** The event loop's utilisation (0–1) since the previous call (default {@link eventLoopLoad}). */
  load?: () => number;
  /** Monotonic clock timing each step, ms (default `performance.now`). */
  clock?: () => number;
}

const rest = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Moves the spool's queued jobs to BullMQ, idempotently (the spool id is the BullMQ job id), in
 * steps of {@link REPLAY_STEP}: taken under a lease, added through the failover, then deleted; a
 * step Redis refuses or is late with goes back to the spool (if it reached Redis after all, BullMQ
 * dedupes it next time). One step at a time (never two batches in flight), each followed by a rest
 * sized by {@link replayRest}: the replay runs right after a failback, while the app serves, and
 * takes a twentieth of the time while the app keeps its event loop busy, up to half when it is idle.
 * A slower replay loses nothing: the jobs wait in the durable spool (its backlog shows in
 * `/health` and the queue metrics) and the next failback or interval resumes a replay cut short.
 */
export class SpoolReplay {
  readonly #o: SpoolReplayOptions;
  #running: Promise<number> | undefined;

  constructor(opts: SpoolReplayOptions) {
    this.#o = opts;
  }

  /** Resolves with how many jobs were moved. Concurrent calls share one run. */
  run(): Promise<number> {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Resolves when the run in flight (if any) has ended, whatever its outcome. */
  async settled(): Promise<void> {
    await this.#running?.catch(() => undefined);
  }

  async #run(): Promise<number> {
    const { jobs, failover, bull, bullJobs } = this.#o;
    const owner = `replay:${this.#o.instanceId}`;
    let moved = 0;
    // The engine decides each batch (deadline, breaker). Reading its mode here only keeps the loop
    // from taking a batch under lease to hand it straight back while Redis is known to be down:
    // every add falling to the spool asks for a replay, and those would be two writes each for nothing.
    const pause = this.#o.pacing?.pause ?? rest;
    const load = this.#o.pacing?.load ?? eventLoopLoad();
    const clock = this.#o.pacing?.clock ?? (() => performance.now());
    // Right after a failback the app is usually at its busiest: the first rest assumes a busy loop.
    let utilisation = 1;
    while (this.#o.wanted() && failover.mode === 'primary') {
      const started = clock();
      const rows = await jobs.take(REPLAY_STEP, owner, this.#o.now(), this.#o.leaseMs);
      if (rows.length === 0) break;
      const added = await bull.run(
        async ({ queue }) => {
          for (const [name, batch] of byQueue(rows))
            await queue(name).addBulk(batch.map((row) => bullJobs.replayed(row)));
          return true;
        },
        () => false,
        this.#o.deadlineMs,
      );
      const seqs = rows.map((r) => r.seq);
      if (!added) {
        // Else their lease runs out and recovery gives them back.
        await jobs.release(owner, seqs, false).catch(() => undefined);
        this.#o.logger?.warn(
          { jobs: rows.length },
          'queues: spool replay interrupted (Redis down, or past the deadline)',
        );
        break;
      }
      for (const name of byQueue(rows).keys()) this.#o.reached(name);
      await jobs.complete(owner, seqs);
      moved += rows.length;
      if (rows.length < REPLAY_STEP) break; // the spool is empty: no rest, no further look
      const took = clock() - started;
      // Read over the rest alone: the app's load, not the replay's own steps.
      load();
      await pause(replayRest(took, utilisation));
      utilisation = load();
    }
    if (moved > 0) this.#o.logger?.info({ jobs: moved }, 'queues: spooled jobs replayed into BullMQ');
    return moved;
  }
}

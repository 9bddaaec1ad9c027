import type { Logger } from 'pino';
import { paced, type Failover, type Pacer, type ReplayPacing } from '../failover/index.js';
import { addJobs, byQueue, type BullJobs } from './bullmq-jobs.js';
import type { BullQueues } from './bullmq-queues.js';
import type { SqlJobs } from './sql-jobs.js';

/** Spooled jobs looked at by `counts()` for jobs in both stores. */
export const REPLAY_BATCH = 500;
/**
 * Spooled jobs moved to BullMQ per step: one take, one batch of adds (`addJobs`), one delete.
 * Small, because a step runs between the app's requests on the same event loop and the same BullMQ
 * connection as its adds (issue 18, docs/benchmarks.md#failover-under-load): a step of 25 holds
 * either for about a millisecond, where 100 held them several times as long.
 */
export const REPLAY_STEP = 25;
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
  /** Pacing of the steps (see `replayRest`); every member has a real default (tests drive them). */
  pacing?: ReplayPacing;
}

/**
 * Moves the spool's queued jobs to BullMQ, idempotently (the spool id is the BullMQ job id), in
 * steps of {@link REPLAY_STEP}: taken under a lease, added through the failover, then deleted; a
 * step Redis refuses or is late with goes back to the spool (if it reached Redis after all, BullMQ
 * dedupes it next time). One step at a time (never two batches in flight), each followed by a rest
 * sized by `replayRest` (src/failover/pacing.ts): the replay runs right after a failback, while the app serves, and
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
    const moved = await paced(this.#o.pacing, (pacer) => this.#move(pacer));
    if (moved > 0) this.#o.logger?.info({ jobs: moved }, 'queues: spooled jobs replayed into BullMQ');
    return moved;
  }

  async #move(pacer: Pacer): Promise<number> {
    const { jobs, failover, bull, bullJobs } = this.#o;
    const owner = `replay:${this.#o.instanceId}`;
    let moved = 0;
    // The engine decides each batch (deadline, breaker). Reading its mode here only keeps the loop
    // from taking a batch under lease to hand it straight back while Redis is known to be down:
    // every add falling to the spool asks for a replay, and those would be two writes each for nothing.
    while (this.#o.wanted() && failover.mode === 'primary') {
      pacer.start();
      const rows = await jobs.take(REPLAY_STEP, owner, this.#o.now(), this.#o.leaseMs);
      if (rows.length === 0) break;
      const added = await bull.run(
        async ({ producer }) => {
          for (const [name, batch] of byQueue(rows))
            await addJobs(
              producer(name),
              batch.map((row) => bullJobs.replayed(row)),
            );
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
      await pacer.rest();
    }
    return moved;
  }
}

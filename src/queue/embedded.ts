import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { bulwarkError, isBulwarkError } from '../errors/index.js';
import type { Store } from '../store/types.js';
import { Batch } from './batch.js';
import { EmbeddedWorker } from './embedded-worker.js';
import { jobId } from './ids.js';
import type { QueueMetrics } from './metrics.js';
import { Schedules } from './schedules.js';
import { emptyCounts, SqlJobReads } from './sql-job-reads.js';
import { SqlJobs, type NewJob } from './sql-jobs.js';
import { emptyTimings } from './timings.js';
import type {
  JobDetail,
  JobHandler,
  JobOptions,
  JobPage,
  JobQueue,
  JobState,
  JobSummary,
  PageOptions,
  QueueCounts,
  QueueTimings,
  RepeatOptions,
  StoredJobOptions,
  WorkerOptions,
} from './types.js';
import {
  checkJobOptions,
  checkQueue,
  optionsError,
  pageLimit,
  pageOptions,
  positiveInt,
  serialise,
} from './validate.js';

/** Options of {@link EmbeddedJobQueue}. Times in milliseconds. */
export interface EmbeddedJobQueueOptions {
  store: Store;
  /** Names this process's leases (default a random UUID). */
  instanceId?: string;
  /** An active job's lease; a worker that dies is noticed this long after its last renewal (default 30 000). */
  leaseMs?: number;
  /** How often idle workers look for due jobs added elsewhere or falling due (default 100). */
  pollMs?: number;
  /** Jobs claimed per query, at most (default 64). */
  claimBatch?: number;
  metrics?: QueueMetrics;
  logger?: Logger;
  now?: () => number;
  /**
   * Where repeatable jobs' occurrences are added (default this queue). The Redis driver passes its
   * own `add`, so occurrences go to BullMQ while Redis is up and to this spool while it is not.
   */
  schedulerAdd?: (queue: string, data: unknown, opts: JobOptions) => Promise<string>;
}

const PAUSED = 'bulwark.queues.paused';

/**
 * The durable embedded job queue on the store (SQLite by default, PostgreSQL with
 * `FOR UPDATE SKIP LOCKED`). `add` resolves once the job is committed; jobs are leased to a worker
 * for `leaseMs` (renewed while it runs) and recovered when a worker dies; delivery is at least once.
 * See docs/queues.md.
 */
export class EmbeddedJobQueue implements JobQueue {
  readonly #store: Store;
  readonly #jobs: SqlJobs;
  readonly #reads: SqlJobReads;
  readonly #instanceId: string;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #claimBatch: number;
  readonly #metrics: QueueMetrics | undefined;
  readonly #logger: Logger | undefined;
  readonly #now: () => number;
  readonly #workers = new Map<string, EmbeddedWorker>();
  readonly #adds: Batch<NewJob>;
  readonly #timers: NodeJS.Timeout[] = [];
  #paused = new Set<string>();
  #held = false;
  /** Who holds the local workers ({@link holdLocal}). */
  readonly #holders = new Set<string>();
  #closed = false;
  readonly #schedules: Schedules;
  /** The first read of the paused set: workers start claiming only after it. */
  readonly #pausedLoaded: Promise<void>;

  constructor(opts: EmbeddedJobQueueOptions) {
    this.#store = opts.store;
    this.#jobs = new SqlJobs(opts.store.db, opts.store.engine);
    this.#reads = new SqlJobReads(opts.store);
    this.#instanceId = opts.instanceId ?? randomUUID();
    this.#leaseMs = opts.leaseMs ?? 30_000;
    this.#pollMs = opts.pollMs ?? 100;
    this.#claimBatch = opts.claimBatch ?? 64;
    this.#metrics = opts.metrics;
    this.#logger = opts.logger;
    this.#now = opts.now ?? Date.now;
    this.#schedules = new Schedules({
      kv: opts.store.kv,
      now: this.#now,
      add: opts.schedulerAdd ?? ((queue, data, jobOpts) => this.add(queue, data, jobOpts)),
    });
    this.#adds = new Batch(async (jobs) => {
      await this.#jobs.insert(jobs);
      for (const queue of new Set(jobs.map((j) => j.queue))) this.#workers.get(queue)?.wake();
    });
    this.#metrics?.attach((queue) => this.counts(queue));
    const every = (ms: number, fn: () => Promise<unknown>) => {
      const timer = setInterval(() => void fn().catch((error: unknown) => this.#background(error)), ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(Math.max(50, Math.floor(this.#leaseMs / 2)), () => this.recover());
    every(Math.max(this.#pollMs, 250), () => this.#refreshPaused());
    this.#pausedLoaded = this.#refreshPaused().catch((error: unknown) => this.#background(error));
    every(100, () => (this.#closed ? Promise.resolve() : this.#schedules.run()));
  }

  /** Adds a job; resolves with its id once it is durable in the store. */
  async add<T>(queue: string, data: T, opts: JobOptions = {}): Promise<string> {
    this.#open('add a job');
    checkQueue(queue);
    checkJobOptions(opts);
    const json = serialise(queue, data);
    const now = this.#now();
    const id = opts.id ?? jobId();
    const stored: StoredJobOptions = {};
    if (opts.backoff !== undefined) stored.backoff = opts.backoff;
    if (opts.timeout !== undefined) stored.timeout = opts.timeout;
    await this.#adds.push({
      queue,
      id,
      priority: opts.priority ?? 0,
      runAt: now + (opts.delay ?? 0),
      maxAttempts: opts.attempts ?? 3,
      options: Object.keys(stored).length === 0 ? undefined : stored,
      data: json,
      createdAt: now,
    });
    this.#metrics?.added(queue);
    return id;
  }

  /** Runs `handler` for the jobs of `queue` in this process, `concurrency` at a time. One handler per queue. */
  process<T>(queue: string, handler: JobHandler<T>, opts: WorkerOptions = {}): void {
    this.#open('start a worker');
    checkQueue(queue);
    positiveInt(opts.concurrency, 'concurrency');
    if (opts.limiter !== undefined) {
      positiveInt(opts.limiter.max, 'limiter.max');
      positiveInt(opts.limiter.duration, 'limiter.duration');
    }
    if (this.#workers.has(queue)) throw optionsError(`queue ${queue} already has a handler in this process`);
    const worker = new EmbeddedWorker({
      queue,
      handler: handler as JobHandler,
      concurrency: opts.concurrency ?? 1,
      limiter: opts.limiter,
      owner: `${this.#instanceId}:${queue}:${randomUUID().slice(0, 8)}`,
      jobs: this.#jobs,
      leaseMs: this.#leaseMs,
      pollMs: this.#pollMs,
      claimBatch: this.#claimBatch,
      paused: () => this.#held || this.#paused.has(queue),
      ready: this.#pausedLoaded,
      metrics: this.#metrics,
      logger: this.#logger,
      now: this.#now,
      onError: (error) => this.#background(error),
    });
    this.#workers.set(queue, worker);
    worker.start();
  }

  /** Stops every instance from starting jobs of `queue` (running ones finish). */
  async pause(queue: string): Promise<void> {
    checkQueue(queue);
    await this.#store.kv.put(PAUSED, queue, true);
    this.#paused.add(queue);
  }

  async resume(queue: string): Promise<void> {
    checkQueue(queue);
    await this.#store.kv.delete(PAUSED, queue);
    this.#paused.delete(queue);
    this.#workers.get(queue)?.wake();
  }

  holdLocal(held: boolean, by = 'app'): void {
    if (held) this.#holders.add(by);
    else this.#holders.delete(by);
    if (this.#held === this.#holders.size > 0) return;
    this.#held = this.#holders.size > 0;
    if (!this.#held) for (const worker of this.#workers.values()) worker.wake();
  }

  get heldLocal(): boolean {
    return this.#held;
  }

  /** Queues paused (as last read from the store, or set here). */
  get paused(): ReadonlySet<string> {
    return this.#paused;
  }

  async pausedQueues(): Promise<ReadonlySet<string>> {
    await this.#refreshPaused();
    return this.#paused;
  }

  /**
   * Adds `data` to `queue` on a schedule (`every` ms or a `cron` pattern), once per occurrence
   * across every instance sharing the store. Re-registering a name replaces its schedule. An
   * occurrence missed while no instance ran is added once, late; older ones are skipped.
   */
  repeat<T>(queue: string, name: string, data: T, opts: RepeatOptions): Promise<void> {
    return this.#schedules.repeat(queue, name, data, opts);
  }

  /** Removes a schedule; resolves true if there was one. */
  unrepeat(queue: string, name: string): Promise<boolean> {
    return this.#schedules.unrepeat(queue, name);
  }

  /** Per-state counts, by queue (every queue with jobs, or just `queue`). */
  async counts(queue?: string): Promise<Map<string, QueueCounts>> {
    const counts = await this.#reads.counts(this.#now(), queue);
    if (queue !== undefined && !counts.has(queue)) counts.set(queue, emptyCounts());
    for (const name of this.#workers.keys())
      if (!counts.has(name) && queue === undefined) counts.set(name, emptyCounts());
    return counts;
  }

  list(queue: string, state: JobState, limit = 100): Promise<JobSummary[]> {
    checkQueue(queue);
    return this.#reads.list(queue, state, this.#now(), pageLimit(limit));
  }

  /** One page of jobs, oldest first (by insertion); `next` is the last job's place in the table. */
  async page(queue: string, state: JobState, opts: PageOptions = {}): Promise<JobPage> {
    checkQueue(queue);
    const { limit, previewBytes } = pageOptions(opts);
    if (opts.after !== undefined && !/^\d{1,15}$/.test(opts.after))
      throw optionsError(`after ${JSON.stringify(opts.after)} is not the next of a page of this queue`);
    const { jobs, next } = await this.#reads.page(queue, state, this.#now(), {
      limit,
      previewBytes,
      afterSeq: opts.after === undefined ? undefined : Number(opts.after),
    });
    return { jobs, next: next === null ? null : String(next) };
  }

  job(queue: string, id: string): Promise<JobDetail | undefined> {
    checkQueue(queue);
    return this.#reads.job(queue, id, this.#now());
  }

  oldestWaiting(queue?: string): Promise<Map<string, number>> {
    if (queue !== undefined) checkQueue(queue);
    return this.#reads.oldestWaiting(this.#now(), queue);
  }

  /** From the metrics given to this queue (none: no timings). */
  timings(queue: string): QueueTimings {
    return this.#metrics?.timings(queue) ?? emptyTimings();
  }

  /** Dead jobs (all of `queue`, or `ids`) run again with fresh attempts; resolves with the ids. */
  async redrive(queue: string, ids?: string[]): Promise<string[]> {
    checkQueue(queue);
    const done = await this.#jobs.redrive(queue, this.#now(), ids);
    this.#workers.get(queue)?.wake();
    return done;
  }

  /** A delayed or retrying job becomes due now. */
  async promote(queue: string, id: string): Promise<void> {
    checkQueue(queue);
    if (!(await this.#jobs.promote(queue, id, this.#now())))
      throw bulwarkError('BWK_ERR_QUEUE_JOB_NOT_FOUND', { queue, id, state: 'delayed or retrying' });
    this.#workers.get(queue)?.wake();
  }

  /** Deletes a job that is not running. */
  async remove(queue: string, id: string): Promise<void> {
    checkQueue(queue);
    if (!(await this.#jobs.remove(queue, id)))
      throw bulwarkError('BWK_ERR_QUEUE_JOB_NOT_FOUND', {
        queue,
        id,
        state: 'waiting, delayed, retrying or dead',
      });
  }

  /** Recovers jobs whose worker died (lease expired); runs every `leaseMs / 2` on its own. */
  async recover(): Promise<number> {
    const recovered = await this.#jobs.recover(this.#now());
    if (recovered > 0) {
      this.#logger?.warn({ recovered }, 'queues: recovered jobs whose worker stopped renewing its lease');
      this.#metrics?.recovered(recovered);
      for (const worker of this.#workers.values()) worker.wake();
    }
    return recovered;
  }

  /**
   * Stops taking jobs, lets running ones finish for up to `deadlineMs` (default 10 000), then aborts
   * the rest and gives them back to the queue without counting the attempt. Idempotent.
   */
  async close(deadlineMs = 10_000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    await Promise.all([...this.#workers.values()].map((w) => w.close(deadlineMs)));
  }

  #open(operation: string): void {
    if (this.#closed) throw bulwarkError('BWK_ERR_QUEUE_CLOSED', { operation });
  }

  #background(error: unknown): void {
    // The store being down is reported by its own health check; keep trying quietly.
    if (isBulwarkError(error, 'BWK_ERR_STORE_UNAVAILABLE'))
      this.#logger?.debug({ err: error }, 'queues: store unavailable');
    else this.#logger?.error({ err: error }, 'queues: background task failed');
  }

  async #refreshPaused(): Promise<void> {
    const entries = await this.#store.kv.list(PAUSED);
    const next = new Set(entries.map((e) => e.key));
    for (const queue of this.#paused) if (!next.has(queue)) this.#workers.get(queue)?.wake();
    this.#paused = next;
  }
}

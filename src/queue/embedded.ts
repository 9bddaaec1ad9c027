import { randomUUID } from 'node:crypto';
import { Cron } from 'croner';
import type { Logger } from 'pino';
import { bulwarkError, isBulwarkError } from '../errors/index.js';
import type { Store } from '../store/types.js';
import { DEFAULT_BACKOFF, retryDelay } from './backoff.js';
import type { QueueMetrics } from './metrics.js';
import { emptyCounts, SqlJobs, type JobRow, type NewJob } from './sql-jobs.js';
import type {
  Job,
  JobHandler,
  JobOptions,
  JobQueue,
  JobState,
  JobSummary,
  QueueCounts,
  RepeatOptions,
  StoredJobOptions,
  WorkerOptions,
} from './types.js';

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

const QUEUE_NAME = /^[\w.:-]{1,200}$/;
const PAUSED = 'bulwark.queues.paused';
const REPEAT = 'bulwark.queues.repeat';

interface Schedule {
  queue: string;
  name: string;
  data: unknown;
  every?: number;
  cron?: string;
  tz?: string;
  job?: Omit<JobOptions, 'id'>;
  /** Next occurrence, ms since the epoch. */
  next: number;
}

export function optionsError(detail: string): Error {
  return bulwarkError('BWK_ERR_QUEUE_OPTIONS', { detail });
}

export function checkQueue(queue: unknown): string {
  if (typeof queue !== 'string' || !QUEUE_NAME.test(queue))
    throw optionsError(`queue name ${JSON.stringify(queue)} must be 1–200 of letters, digits, _ . : -`);
  return queue;
}

export function positiveInt(value: unknown, name: string): void {
  if (value !== undefined && (!Number.isInteger(value) || (value as number) < 1))
    throw optionsError(`${name} must be a positive integer`);
}

function nonNegative(value: unknown, name: string): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value < 0))
    throw optionsError(`${name} must be a number ≥ 0`);
}

/** The job data as JSON, or `BWK_ERR_QUEUE_DATA_INVALID` when JSON cannot hold it. */
export function serialise(queue: string, data: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (error) {
    throw bulwarkError('BWK_ERR_QUEUE_DATA_INVALID', { queue, detail: (error as Error).message });
  }
  if (json === undefined)
    throw bulwarkError('BWK_ERR_QUEUE_DATA_INVALID', { queue, detail: 'the data is not a JSON value' });
  return json;
}

export function checkJobOptions(opts: JobOptions): void {
  if (opts.id !== undefined && (typeof opts.id !== 'string' || opts.id.length === 0 || opts.id.length > 200))
    throw optionsError('id must be a string of 1–200 characters');
  positiveInt(opts.attempts, 'attempts');
  nonNegative(opts.delay, 'delay');
  if (opts.priority !== undefined && !Number.isInteger(opts.priority))
    throw optionsError('priority must be an integer');
  positiveInt(opts.timeout, 'timeout');
  const b = opts.backoff;
  if (b !== undefined) {
    if (b.type !== undefined && b.type !== 'exponential' && b.type !== 'fixed')
      throw optionsError('backoff.type must be exponential or fixed');
    nonNegative(b.delay, 'backoff.delay');
    nonNegative(b.maxDelay, 'backoff.maxDelay');
    if (b.jitter !== undefined && (typeof b.jitter !== 'number' || b.jitter < 0 || b.jitter > 1))
      throw optionsError('backoff.jitter must be between 0 and 1');
  }
}

/** Group commit: items pushed in one turn of the event loop are flushed together. */
export class Batch<T> {
  #items: { item: T; resolve: () => void; reject: (error: unknown) => void }[] = [];
  readonly #flush: (items: T[]) => Promise<void>;
  constructor(flush: (items: T[]) => Promise<void>) {
    this.#flush = flush;
  }
  push(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#items.push({ item, resolve, reject });
      if (this.#items.length === 1) setImmediate(() => void this.#run());
    });
  }
  async #run(): Promise<void> {
    const items = this.#items;
    this.#items = [];
    try {
      await this.#flush(items.map((i) => i.item));
      for (const i of items) i.resolve();
    } catch (error) {
      for (const i of items) i.reject(error);
    }
  }
}

/**
 * The durable embedded job queue on the store (SQLite by default, PostgreSQL with
 * `FOR UPDATE SKIP LOCKED`). `add` resolves once the job is committed; jobs are leased to a worker
 * for `leaseMs` (renewed while it runs) and recovered when a worker dies; delivery is at least once.
 * See docs/queues.md.
 */
export class EmbeddedJobQueue implements JobQueue {
  readonly #store: Store;
  readonly #jobs: SqlJobs;
  readonly #instanceId: string;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #claimBatch: number;
  readonly #metrics: QueueMetrics | undefined;
  readonly #logger: Logger | undefined;
  readonly #now: () => number;
  readonly #workers = new Map<string, Worker>();
  readonly #adds: Batch<NewJob>;
  readonly #timers: NodeJS.Timeout[] = [];
  #paused = new Set<string>();
  #held = false;
  #closed = false;
  #schedulerAdd: NonNullable<EmbeddedJobQueueOptions['schedulerAdd']>;
  /** The first read of the paused set: workers start claiming only after it. */
  readonly #pausedLoaded: Promise<void>;

  constructor(opts: EmbeddedJobQueueOptions) {
    this.#store = opts.store;
    this.#jobs = new SqlJobs(opts.store.db, opts.store.engine);
    this.#instanceId = opts.instanceId ?? randomUUID();
    this.#leaseMs = opts.leaseMs ?? 30_000;
    this.#pollMs = opts.pollMs ?? 100;
    this.#claimBatch = opts.claimBatch ?? 64;
    this.#metrics = opts.metrics;
    this.#logger = opts.logger;
    this.#now = opts.now ?? Date.now;
    this.#schedulerAdd = opts.schedulerAdd ?? ((queue, data, jobOpts) => this.add(queue, data, jobOpts));
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
    every(100, () => this.#runSchedules());
  }

  /** Adds a job; resolves with its id once it is durable in the store. */
  async add<T>(queue: string, data: T, opts: JobOptions = {}): Promise<string> {
    this.#open('add a job');
    checkQueue(queue);
    checkJobOptions(opts);
    const json = serialise(queue, data);
    const now = this.#now();
    const id = opts.id ?? randomUUID();
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
    const worker = new Worker({
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

  holdLocal(held: boolean): void {
    if (this.#held === held) return;
    this.#held = held;
    if (!held) for (const worker of this.#workers.values()) worker.wake();
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
  async repeat<T>(queue: string, name: string, data: T, opts: RepeatOptions): Promise<void> {
    checkQueue(queue);
    if (typeof name !== 'string' || name.length === 0 || name.length > 200)
      throw optionsError('repeat name must be a string of 1–200 characters');
    if ((opts.every === undefined) === (opts.cron === undefined))
      throw optionsError('repeat needs exactly one of every or cron');
    positiveInt(opts.every, 'every');
    if (opts.job !== undefined) checkJobOptions(opts.job);
    const schedule: Schedule = { queue, name, data, next: 0 };
    if (opts.every !== undefined) schedule.every = opts.every;
    if (opts.cron !== undefined) schedule.cron = opts.cron;
    if (opts.tz !== undefined) schedule.tz = opts.tz;
    if (opts.job !== undefined) schedule.job = opts.job;
    schedule.next = this.#following(schedule, this.#now());
    await this.#store.kv.put(REPEAT, `${queue}/${name}`, schedule);
  }

  /** Removes a schedule; resolves true if there was one. */
  unrepeat(queue: string, name: string): Promise<boolean> {
    return this.#store.kv.delete(REPEAT, `${queue}/${name}`);
  }

  /** Per-state counts, by queue (every queue with jobs, or just `queue`). */
  async counts(queue?: string): Promise<Map<string, QueueCounts>> {
    const counts = await this.#jobs.counts(this.#now(), queue);
    if (queue !== undefined && !counts.has(queue)) counts.set(queue, emptyCounts());
    for (const name of this.#workers.keys())
      if (!counts.has(name) && queue === undefined) counts.set(name, emptyCounts());
    return counts;
  }

  list(queue: string, state: JobState, limit = 100): Promise<JobSummary[]> {
    checkQueue(queue);
    return this.#jobs.list(queue, state, this.#now(), Math.min(Math.max(1, limit), 1000));
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

  #following(schedule: Schedule, after: number): number {
    if (schedule.every !== undefined) return after + schedule.every;
    let cron: Cron;
    try {
      cron = new Cron(schedule.cron ?? '', {
        paused: true,
        ...(schedule.tz === undefined ? { timezone: 'UTC' } : { timezone: schedule.tz }),
      });
    } catch (error) {
      throw optionsError(
        `cron ${JSON.stringify(schedule.cron)} is not a valid pattern: ${(error as Error).message}`,
      );
    }
    const next = cron.nextRun(new Date(after));
    if (next === null) throw optionsError(`cron ${JSON.stringify(schedule.cron)} never runs again`);
    return next.getTime();
  }

  /**
   * Adds due occurrences. The schedule is advanced with a compare-and-set before the job is added:
   * of several instances racing, one wins and adds; the occurrence id dedupes the rest. (A process
   * dying between the two loses that one occurrence rather than running it twice.)
   */
  async #runSchedules(): Promise<void> {
    if (this.#closed) return;
    const now = this.#now();
    for (const entry of await this.#store.kv.list<Schedule>(REPEAT)) {
      const schedule = entry.value;
      if (schedule.next > now) continue;
      const occurrence = schedule.next;
      // The next occurrence after now: anchored to the schedule (no drift), missed ones skipped.
      let following = this.#following(schedule, occurrence);
      if (following <= now) following = this.#following(schedule, now);
      const next: Schedule = { ...schedule, next: following };
      try {
        await this.#store.kv.put(REPEAT, entry.key, next, { ifVersion: entry.version });
      } catch (error) {
        if (isBulwarkError(error, 'BWK_ERR_STORE_CONFLICT')) continue; // another instance took it
        throw error;
      }
      await this.#schedulerAdd(schedule.queue, schedule.data, {
        ...schedule.job,
        id: `repeat:${schedule.name}:${occurrence}`,
      });
    }
  }
}

/** The signal of an attempt nothing can abort (no timeout, no owner that aborts). */
const NEVER = new AbortController().signal;

/**
 * Runs one attempt of a handler: with a timeout, the attempt fails with `BWK_ERR_QUEUE_JOB_TIMEOUT`
 * and `controller` (created here when not given) aborts when it passes.
 */
export async function runHandler(
  handler: JobHandler,
  job: Job,
  timeoutMs: number | undefined,
  given?: AbortController,
): Promise<void> {
  if (timeoutMs === undefined) {
    await handler(job, { signal: given?.signal ?? NEVER });
    return;
  }
  const controller = given ?? new AbortController();
  const run = handler(job, { signal: controller.signal });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      run,
      new Promise((_, reject) => {
        timer = setTimeout(() => {
          const error = bulwarkError('BWK_ERR_QUEUE_JOB_TIMEOUT', {
            queue: job.queue,
            id: job.id,
            timeoutMs,
          });
          // Rejected before the abort: a handler that returns as soon as it is aborted must not
          // win the race and count as completed.
          reject(error);
          controller.abort(error);
        }, timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

interface WorkerConfig {
  queue: string;
  handler: JobHandler;
  concurrency: number;
  limiter: WorkerOptions['limiter'];
  owner: string;
  jobs: SqlJobs;
  leaseMs: number;
  pollMs: number;
  claimBatch: number;
  paused: () => boolean;
  /** Resolves once the paused set has been read: no job of a paused queue starts before. */
  ready: Promise<void>;
  metrics: QueueMetrics | undefined;
  logger: Logger | undefined;
  now: () => number;
  onError: (error: unknown) => void;
}

/** Claims and runs the jobs of one queue in this process. */
class Worker {
  readonly #c: WorkerConfig;
  readonly #active = new Map<number, { controller: AbortController; done: Promise<void> }>();
  readonly #completions: Batch<number>;
  #pumping = false;
  #again = false;
  #closing = false;
  #poll: NodeJS.Timeout | undefined;
  #renew: NodeJS.Timeout | undefined;
  #windowStart = 0;
  #windowCount = 0;

  constructor(config: WorkerConfig) {
    this.#c = config;
    this.#completions = new Batch((seqs) => this.#c.jobs.complete(this.#c.owner, seqs));
  }

  start(): void {
    this.#renew = setInterval(
      () => {
        if (this.#active.size === 0) return;
        this.#c.jobs.extend(this.#c.owner, this.#c.now() + this.#c.leaseMs).catch(this.#c.onError);
      },
      Math.max(10, Math.floor(this.#c.leaseMs / 3)),
    );
    this.#renew.unref();
    void this.#c.ready.then(() => this.wake());
  }

  /** Looks for jobs now (new jobs were added, a slot freed, the queue resumed). */
  wake(): void {
    if (this.#closing) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    void this.#pump();
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    clearTimeout(this.#poll);
    let delay = this.#c.pollMs;
    try {
      await this.#c.ready;
      do {
        this.#again = false;
        while (!this.#closing && !this.#c.paused() && this.#active.size < this.#c.concurrency) {
          let want = Math.min(this.#c.concurrency - this.#active.size, this.#c.claimBatch);
          const limiter = this.#c.limiter;
          if (limiter !== undefined) {
            const now = this.#c.now();
            if (now - this.#windowStart >= limiter.duration) this.#windowCount = 0;
            want = Math.min(want, limiter.max - this.#windowCount);
            if (want <= 0) {
              delay = Math.max(1, this.#windowStart + limiter.duration - now);
              break;
            }
          }
          const rows = await this.#c.jobs.claim(
            this.#c.queue,
            want,
            this.#c.owner,
            this.#c.now(),
            this.#c.leaseMs,
          );
          // A window opens when its first jobs are handed out, not when their claim was sent: a slow
          // claim (a round trip to PostgreSQL) must not eat into the window it opens.
          if (this.#windowCount === 0 && rows.length > 0) this.#windowStart = this.#c.now();
          this.#windowCount += rows.length;
          for (const row of rows) this.#run(row);
          if (rows.length < want) break; // drained: wait for a wake or the poll
        }
      } while (this.#again && !this.#closing);
    } catch (error) {
      this.#c.onError(error);
    } finally {
      this.#pumping = false;
      if (!this.#closing) {
        // Not unref'd: a process with a worker stays alive to run jobs until close().
        this.#poll = setTimeout(() => this.wake(), delay);
      }
    }
  }

  #run(row: JobRow): void {
    const controller = new AbortController();
    const done = this.#execute(row, controller).finally(() => {
      this.#active.delete(row.seq);
      this.wake();
    });
    this.#active.set(row.seq, { controller, done });
  }

  async #execute(row: JobRow, controller: AbortController): Promise<void> {
    const options = row.options === null ? {} : (JSON.parse(row.options) as StoredJobOptions);
    const job: Job = {
      queue: row.queue,
      id: row.id,
      data: JSON.parse(row.data) as unknown,
      attempt: row.attempts,
      maxAttempts: row.max_attempts,
      priority: row.priority,
      createdAt: Number(row.created_at),
      runAt: Number(row.run_at),
    };
    const startedAt = this.#c.now();
    this.#c.metrics?.started(job.queue, (startedAt - job.runAt) / 1000);
    try {
      await runHandler(this.#c.handler, job, options.timeout, controller);
      if (this.#closing && controller.signal.aborted) return; // released by close()
      await this.#completions.push(row.seq);
      this.#c.metrics?.finished(
        job.queue,
        'completed',
        (this.#c.now() - startedAt) / 1000,
        (this.#c.now() - job.createdAt) / 1000,
      );
    } catch (error) {
      if (this.#closing && controller.signal.aborted) return; // released by close()
      const dead = job.attempt >= job.maxAttempts;
      const now = this.#c.now();
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      this.#c.logger?.warn(
        { queue: job.queue, jobId: job.id, attempt: job.attempt, maxAttempts: job.maxAttempts, err: error },
        dead ? 'job failed on its last attempt: dead-lettered' : 'job failed: will retry',
      );
      try {
        await this.#c.jobs.fail(this.#c.owner, row.seq, {
          dead,
          runAt: dead ? now : now + retryDelay(options.backoff ?? DEFAULT_BACKOFF, job.attempt),
          error: message.slice(0, 2000),
          now,
        });
      } catch (storeError) {
        // The lease runs out and recovery retries the job: nothing is lost.
        this.#c.onError(storeError);
      }
      this.#c.metrics?.finished(job.queue, dead ? 'dead' : 'retried', (now - startedAt) / 1000, undefined);
    }
  }

  async close(deadlineMs: number): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#poll);
    clearInterval(this.#renew);
    const running = [...this.#active.values()].map((a) => a.done);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    const outcome = await Promise.race([Promise.all(running).then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    if (outcome === 'deadline') {
      const left = [...this.#active.entries()];
      for (const [, a] of left)
        a.controller.abort(bulwarkError('BWK_ERR_QUEUE_CLOSED', { operation: 'finish the job' }));
      try {
        await this.#c.jobs.release(
          this.#c.owner,
          left.map(([seq]) => seq),
        );
      } catch (error) {
        this.#c.onError(error); // their leases run out and recovery gives them back
      }
      this.#c.logger?.warn(
        { queue: this.#c.queue, released: left.length },
        'queues: released jobs still running at the close deadline',
      );
    }
  }
}

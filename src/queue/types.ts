/** How the delay before a retry grows. Times in milliseconds. */
export interface BackoffOptions {
  /** `exponential`: delay × 2^(retry − 1); `fixed`: delay every time. Default `exponential`. */
  type?: 'exponential' | 'fixed';
  /** Base delay (default 1 000). */
  delay?: number;
  /** Ceiling of one delay (default 1 hour). */
  maxDelay?: number;
  /**
   * Fraction of the delay drawn at random and taken off it (0–1, default 0.5), so jobs that failed
   * together do not all retry at the same instant ("equal jitter").
   */
  jitter?: number;
}

/** Options of one job. Times in milliseconds. */
export interface JobOptions {
  /**
   * Job id, unique within its queue: adding a job whose id is already queued, active or dead adds
   * nothing and returns that id (dedupe). 1–200 characters, not `0` or starting `0:` (BullMQ
   * reserves them). Default a time-ordered unique id.
   */
  id?: string;
  /** Attempts before the job is dead-lettered (default 3). */
  attempts?: number;
  backoff?: BackoffOptions;
  /** Not before this many ms from now (default 0). */
  delay?: number;
  /** Lower runs first (default 0); ties run in the order added. */
  priority?: number;
  /** An attempt running longer fails with `BWK_ERR_QUEUE_JOB_TIMEOUT` (default none). */
  timeout?: number;
}

/** What the stored job carries besides its data (options that matter after it was added). */
export interface StoredJobOptions {
  backoff?: BackoffOptions;
  timeout?: number;
}

/** A job as handed to a handler. */
export interface Job<T = unknown> {
  queue: string;
  id: string;
  data: T;
  /** This attempt, from 1. */
  attempt: number;
  maxAttempts: number;
  priority: number;
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** When it became due (added, or retried after a backoff). */
  runAt: number;
}

/** Passed to a handler with its job. */
export interface JobContext {
  /** Aborts when the job's timeout passes or the worker is closing past its deadline. */
  signal: AbortSignal;
}

export type JobHandler<T = unknown> = (job: Job<T>, ctx: JobContext) => Promise<unknown>;

/** Options of `process()`. */
export interface WorkerOptions {
  /** Jobs run at once by this process (default 1). */
  concurrency?: number;
  /** At most `max` jobs started per `duration` ms by this process (default no limit). */
  limiter?: { max: number; duration: number };
}

/** A repeatable job: added on a schedule, once per occurrence across every instance. */
export interface RepeatOptions {
  /** Every this many ms. */
  every?: number;
  /** A cron pattern (5 fields, or 6 with seconds), in `tz` (default UTC). */
  cron?: string;
  tz?: string;
  /** Options of every job added by the schedule (its `id` is derived from the occurrence). */
  job?: Omit<JobOptions, 'id'>;
}

/** The states a job is reported in. */
export type JobState = 'waiting' | 'delayed' | 'retrying' | 'active' | 'dead';

/** Per-state counts of one queue. */
export type QueueCounts = Record<JobState, number>;

/** A job as listed for operators. */
export interface JobSummary {
  queue: string;
  id: string;
  state: JobState;
  attempts: number;
  maxAttempts: number;
  priority: number;
  createdAt: number;
  runAt: number;
  lastError: string | null;
  data: unknown;
}

/** A long text cut short for a list: its start and the size of the whole. */
export interface Preview {
  /** The start of the text: at most the preview's size in UTF-8 bytes, never cutting a character. */
  text: string;
  /** The whole text's size in UTF-8 bytes. */
  bytes: number;
  /** True when `text` is not the whole text. */
  truncated: boolean;
}

/** A job as a page of a list shows it: its data (as JSON text) and last error as previews. */
export type JobPreview = Omit<JobSummary, 'data' | 'lastError'> & {
  data: Preview;
  lastError: Preview | null;
};

/** One page of a queue's jobs in one state. */
export interface JobPage {
  jobs: JobPreview[];
  /** Pass as `after` for the next page; null on the last page. Opaque. */
  next: string | null;
}

/** Options of {@link JobQueue.page}. */
export interface PageOptions {
  /** Jobs per page (default 100, 1–1 000). */
  limit?: number;
  /** The `next` of the previous page. */
  after?: string;
  /** Bytes of each job's data and error shown (default 1 024). */
  previewBytes?: number;
}

/** One job with everything stored about it. Times in milliseconds since the epoch. */
export interface JobDetail extends JobSummary {
  /** When its latest attempt started (null: never started). */
  startedAt: number | null;
  /** When it died (null unless dead). */
  finishedAt: number | null;
  /** Its backoff and timeout, as added. */
  options: StoredJobOptions;
}

/** Percentiles of recent durations, in milliseconds (null when none was recorded). */
export interface DurationStats {
  /** How many durations the window holds. */
  count: number;
  p50: number | null;
  p95: number | null;
}

/**
 * A queue's recent wait and run times as seen by this process: `wait` from a job falling due (added,
 * its delay over, its backoff over) to an attempt starting; `run` from an attempt starting to it
 * finishing (completed, failed or dead). Over the last `windowMs`, at most the last 1 000 of each.
 */
export interface QueueTimings {
  windowMs: number;
  wait: DurationStats;
  run: DurationStats;
}

/**
 * The job queue behind `bulwark.queues`: the embedded queue on the store, or (with `REDIS_URL`)
 * BullMQ behind the failover with the embedded queue as its durable outage spool.
 */
export interface JobQueue {
  /** Adds a job; resolves with its id once it is durable. */
  add<T>(queue: string, data: T, opts?: JobOptions): Promise<string>;
  /** Runs `handler` for the jobs of `queue` in this process. One handler per queue per process. */
  process<T>(queue: string, handler: JobHandler<T>, opts?: WorkerOptions): void;
  /** Stops every instance from starting jobs of `queue`; running jobs finish. */
  pause(queue: string): Promise<void>;
  resume(queue: string): Promise<void>;
  /** Adds `data` on a schedule, once per occurrence across instances. */
  repeat<T>(queue: string, name: string, data: T, opts: RepeatOptions): Promise<void>;
  /** Removes a schedule; resolves true if there was one. */
  unrepeat(queue: string, name: string): Promise<boolean>;
  /** Per-state counts by queue (every known queue, or just `queue`). */
  counts(queue?: string): Promise<Map<string, QueueCounts>>;
  /** Jobs of `queue` in `state`, oldest first, at most `limit` (default 100, at most 1 000). */
  list(queue: string, state: JobState, limit?: number): Promise<JobSummary[]>;
  /**
   * Jobs of `queue` in `state`, oldest first, one page at a time, each with its data and last error
   * cut to `previewBytes` (the whole job: {@link job}). `BWK_ERR_QUEUE_OPTIONS` for an `after` that
   * is not a `next` of this queue.
   */
  page(queue: string, state: JobState, opts?: PageOptions): Promise<JobPage>;
  /** The whole job `id` of `queue`, or undefined when there is none (completed jobs are gone). */
  job(queue: string, id: string): Promise<JobDetail | undefined>;
  /**
   * When the oldest waiting job of each queue fell due (ms since the epoch), for the queues that have
   * waiting jobs (every queue, or just `queue`).
   */
  oldestWaiting(queue?: string): Promise<Map<string, number>>;
  /** `queue`'s recent wait and run times in this process (its workers, not other instances'). */
  timings(queue: string): QueueTimings;
  /** Dead jobs (all, or `ids`) run again with fresh attempts; resolves with the ids redriven. */
  redrive(queue: string, ids?: string[]): Promise<string[]>;
  /** A delayed or retrying job becomes due now (`BWK_ERR_QUEUE_JOB_NOT_FOUND` if none). */
  promote(queue: string, id: string): Promise<void>;
  /** Deletes a job that is not running (`BWK_ERR_QUEUE_JOB_NOT_FOUND` if none). */
  remove(queue: string, id: string): Promise<void>;
  /** Queues paused, as last known to this process (refreshed from the store every 250 ms). */
  readonly paused: ReadonlySet<string>;
  /** Queues paused, read from the store now. */
  pausedQueues(): Promise<ReadonlySet<string>>;
  /**
   * While held, this process starts no job of any queue (running ones finish); other instances are
   * not affected and nothing is written to the store. The supervisor's medium recovery holds the
   * background work of an instance under memory or CPU pressure, and releases it when it is over;
   * the degradation controller may too. Each holder (`by`, default `app`) holds and releases its
   * own hold: the workers run again once no holder holds them.
   */
  holdLocal(held: boolean, by?: string): void;
  /** True while {@link holdLocal} holds this process's workers. */
  readonly heldLocal: boolean;
  /** Stops taking jobs; running ones get `deadlineMs`, then go back to the queue. Idempotent. */
  close(deadlineMs?: number): Promise<void>;
}

/**
 * A {@link JobQueue} whose queue names and payload types are fixed by a map, e.g.
 * `typedQueues<{ email: { to: string } }>(bulwark.queues)`: adding `{ too: 1 }` to `email`, or
 * adding to a queue not in the map, does not compile.
 */
export interface TypedJobQueue<M extends Record<string, unknown>> {
  add<K extends keyof M & string>(queue: K, data: M[K], opts?: JobOptions): Promise<string>;
  process<K extends keyof M & string>(queue: K, handler: JobHandler<M[K]>, opts?: WorkerOptions): void;
  repeat<K extends keyof M & string>(queue: K, name: string, data: M[K], opts: RepeatOptions): Promise<void>;
  /** The untyped queue, for operations that do not carry payloads (counts, pause, redrive, …). */
  readonly untyped: JobQueue;
}

import type { Job as BullJob, JobsOptions, Queue } from 'bullmq';
import { dueAt, type Envelope } from './bullmq-worker.js';
import { preview } from './preview.js';
import type { JobRow } from './sql-jobs.js';
import type { JobDetail, JobOptions, JobPreview, JobState, JobSummary } from './types.js';

/** Every job's retry delays come from its own backoff options, through the workers' strategy. */
const BACKOFF = Object.freeze({ type: 'bulwark' });

/** A job as `Queue.add` takes it. */
export interface BullAdd {
  name: string;
  data: Envelope;
  opts: JobsOptions;
}

/**
 * How Bulwark's jobs are written to BullMQ: an explicit id (the replay's dedupe), attempts and the
 * workers' backoff strategy. How long a completed job is kept is not a job option: Bulwark's
 * workers set it for every job they complete (`BullWorker`), so it is not packed, stored,
 * read back and parsed once per job.
 */
export class BullJobs {
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** A new job `id` with Bulwark's options `opts`. */
  added(id: string, data: unknown, opts: JobOptions): BullAdd {
    return { name: 'job', data: envelope(data, opts), opts: this.#options(id, opts) };
  }

  /** A spooled job, with its due time, remaining attempts and creation time. */
  replayed(row: JobRow): BullAdd {
    const options = row.options === null ? {} : (JSON.parse(row.options) as Envelope['o'] & object);
    // BullMQ makes a job due at its timestamp (here its creation) plus its delay: a job not yet due
    // keeps its due time only with the delay counted from its creation, not from the replay.
    const runAt = Number(row.run_at);
    const delay = runAt > this.#now() ? runAt - Number(row.created_at) : 0;
    const opts: JobOptions = {
      attempts: Math.max(1, row.max_attempts - row.attempts),
      priority: row.priority,
      delay,
      ...options,
    };
    const job = this.added(row.id, JSON.parse(row.data) as unknown, opts);
    return { ...job, opts: { ...job.opts, timestamp: Number(row.created_at) } };
  }

  #options(id: string, opts: JobOptions): JobsOptions {
    const bull: JobsOptions = { jobId: id, attempts: opts.attempts ?? 3, backoff: BACKOFF };
    if (opts.delay) bull.delay = opts.delay;
    // BullMQ runs jobs without a priority first, then priority 1, 2, …: the same order as
    // Bulwark's 0 first, then higher numbers later. Negative priorities run as 0.
    if (opts.priority !== undefined && opts.priority > 0) bull.priority = Math.min(opts.priority, 2_097_152);
    return bull;
  }
}

function envelope(data: unknown, opts: JobOptions): Envelope {
  const o: Envelope['o'] = {};
  if (opts.backoff !== undefined) o.backoff = opts.backoff;
  if (opts.timeout !== undefined) o.timeout = opts.timeout;
  return Object.keys(o).length === 0 ? { d: data } : { d: data, o };
}

/** A BullMQ job as {@link JobSummary} reports it. */
export function summary(queue: string, state: JobState, job: BullJob): JobSummary {
  return {
    ...fields(queue, state, job),
    lastError: job.failedReason ?? null,
    data: (job.data as Envelope).d,
  };
}

/** A BullMQ job as a page of a list shows it: data and error cut to `previewBytes`. */
export function jobPreview(queue: string, state: JobState, job: BullJob, previewBytes: number): JobPreview {
  const error = job.failedReason;
  return {
    ...fields(queue, state, job),
    data: preview(JSON.stringify((job.data as Envelope).d) ?? 'null', previewBytes),
    lastError: error === undefined || error === null ? null : preview(error, previewBytes),
  };
}

/** A BullMQ job with all Bulwark knows of it, or undefined in a state Bulwark does not report (completed). */
export async function jobDetail(queue: string, job: BullJob): Promise<JobDetail | undefined> {
  const state = reportedState(await job.getState(), job);
  if (state === undefined) return undefined;
  return {
    ...summary(queue, state, job),
    startedAt: job.processedOn ?? null,
    finishedAt: state === 'dead' ? (job.finishedOn ?? null) : null,
    options: (job.data as Envelope).o ?? {},
  };
}

/** The reported state of a job in BullMQ state `bull`. */
function reportedState(bull: string, job: BullJob): JobState | undefined {
  switch (bull) {
    case 'waiting':
    case 'prioritized':
      return 'waiting';
    case 'delayed':
      return job.attemptsMade > 0 ? 'retrying' : 'delayed';
    case 'active':
      return 'active';
    case 'failed':
      return 'dead';
    default:
      return undefined;
  }
}

function fields(queue: string, state: JobState, job: BullJob) {
  return {
    queue,
    id: job.id ?? '',
    state,
    attempts: job.attemptsMade,
    maxAttempts: job.opts.attempts ?? 1,
    priority: job.opts.priority ?? 0,
    createdAt: job.timestamp,
    runAt: dueAt(job),
  };
}

/**
 * From this many jobs a batch goes to BullMQ as one `addBulk`: its pipeline's fixed cost (below)
 * is under 1 µs and ~130 bytes a job, and it adds a large burst ~7 % faster than one `add` per job
 * (issue 18: the queue benchmark's 1,000-job bursts, 0.82× raw BullMQ with `add` alone).
 */
export const BULK_FROM = 64;

/**
 * Adds `jobs` to `queue`. A batch under {@link BULK_FROM} jobs (a turn's adds under a request
 * load: a few) goes as one `add` each, all sent in the same turn (the client's socket sends a
 * turn's commands together, src/redis/coalesce.ts). Not `addBulk`: BullMQ builds an ioredis
 * pipeline for each call, and a pipeline copies every script BullMQ defines onto itself (~50 µs
 * and ~8 KB a pipeline, which V8 keeps in its old generation). With the batches of one turn under
 * load, one `add` per job sent 3× the jobs a second and the old generation grew ~1 MB/s against
 * 50–120 MB/s (issue 18, docs/benchmarks.md#failover-under-load). Either way (a pipeline, not a
 * transaction), a failure leaves the jobs before it added: the caller spools the whole batch, and
 * its ids keep a job from being added twice.
 */
export async function addJobs(queue: Queue, jobs: readonly BullAdd[]): Promise<void> {
  if (jobs.length >= BULK_FROM) await queue.addBulk([...jobs]);
  else await Promise.all(jobs.map((job) => queue.add(job.name, job.data, job.opts)));
}

/** Items grouped by their queue, in first-seen order. */
export function byQueue<T extends { queue: string }>(items: readonly T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(item.queue);
    if (group === undefined) groups.set(item.queue, [item]);
    else group.push(item);
  }
  return groups;
}

import type { Job as BullJob, Queue } from 'bullmq';
import { bulwarkError, isBulwarkError } from '../errors/index.js';
import { jobDetail, jobPreview, summary } from './bullmq-jobs.js';
import type { BullQueues } from './bullmq-queues.js';
import { dueAt, PREFIX } from './bullmq-worker.js';
import type { EmbeddedJobQueue } from './embedded.js';
import { REPLAY_BATCH } from './spool-replay.js';
import { emptyCounts, type SqlJobReads } from './sql-job-reads.js';
import type {
  JobDetail,
  JobPage,
  JobPreview,
  JobState,
  JobSummary,
  PageOptions,
  QueueCounts,
} from './types.js';
import { checkQueue, optionsError, pageLimit, pageOptions } from './validate.js';

/** Options of {@link BullAdmin}. */
export interface BullAdminOptions {
  bull: BullQueues;
  spool: EmbeddedJobQueue;
  /** The spool's table. */
  jobs: SqlJobReads;
  /** Queues this process knows of (the others are named in BullMQ's registry, `BullAccess.names`). */
  known: ReadonlySet<string>;
  /** Deadline (ms) of each read or operation on BullMQ. */
  deadlineMs: number;
  now: () => number;
}

/** BullMQ job types behind each reported state. */
const TYPES = {
  waiting: ['wait', 'prioritized'],
  delayed: ['delayed'],
  retrying: ['delayed'],
  active: ['active'],
  dead: ['failed'],
} as const;

/**
 * The admin side of the Redis driver: counts, lists, redrives, promotes and removes over the spool
 * and BullMQ. The spool is asked first; BullMQ through the failover with {@link BullAdminOptions.deadlineMs},
 * so a Redis that is down or frozen costs at most that: reads then answer from the spool alone, and
 * an operation on a job only BullMQ could hold fails with `BWK_ERR_QUEUE_REDIS_UNAVAILABLE`.
 */
export class BullAdmin {
  readonly #o: BullAdminOptions;

  constructor(opts: BullAdminOptions) {
    this.#o = opts;
  }

  /**
   * The spool's counts plus BullMQ's (BullMQ's delayed jobs all count as delayed); a job in both
   * stores counts once. Without an answer from Redis in time, the spool's counts alone.
   */
  async counts(queue?: string): Promise<Map<string, QueueCounts>> {
    const result = await this.#o.spool.counts(queue);
    const bull = await this.#o.bull.run(
      async ({ queue: q, names }) => {
        const queues = queue === undefined ? await this.#queueNames(names) : [queue];
        return Promise.all(queues.map(async (name) => [name, await bullCounts(q(name))] as const));
      },
      () => [],
      this.#o.deadlineMs,
    );
    for (const [name, counts] of bull) {
      const sum = result.get(name) ?? emptyCounts();
      await this.#uncountKnown(name, sum);
      for (const state of Object.keys(sum) as JobState[]) sum[state] += counts[state];
      result.set(name, sum);
    }
    return result;
  }

  /** BullMQ's counts of one queue, or undefined without an answer from Redis in time (the watchdog's). */
  queueCounts(queue: string): Promise<QueueCounts | undefined> {
    return this.#o.bull.run(
      ({ queue: q }) => bullCounts(q(queue)),
      () => undefined,
      this.#o.deadlineMs,
    );
  }

  /** The spool's jobs, then BullMQ's; without an answer from Redis in time, the spool's alone. */
  async list(queue: string, state: JobState, limit = 100): Promise<JobSummary[]> {
    checkQueue(queue);
    const max = pageLimit(limit);
    const spooled = await this.#o.spool.list(queue, state, max);
    if (spooled.length >= max) return spooled;
    const jobs = await this.#o.bull.run(
      async ({ queue: q }) => (await q(queue).getJobs([...TYPES[state]], 0, max - 1, true)) as BullJob[],
      () => [],
      this.#o.deadlineMs,
    );
    // A job in both stores (an add that missed its deadline but reached Redis) is listed once.
    const listed = new Set(spooled.map((j) => j.id));
    const wanted = jobs.filter((j) => !listed.has(j.id ?? '') && inState(state, j));
    return [...spooled, ...wanted.slice(0, max - spooled.length).map((j) => summary(queue, state, j))];
  }

  /**
   * One page of the spool's jobs, then of BullMQ's (state by state of {@link TYPES}). `next` says
   * where the next page starts: `s<spool's next>` or `b<type>.<offset>`. Without an answer from Redis
   * in time, the spool's jobs alone and no next page. A job in both stores may be listed twice
   * across pages (once within one).
   */
  async page(queue: string, state: JobState, opts: PageOptions = {}): Promise<JobPage> {
    checkQueue(queue);
    const { limit, previewBytes } = pageOptions(opts);
    const cursor = parseCursor(opts.after);
    const jobs: JobPreview[] = [];
    if (cursor.spool) {
      const spooled = await this.#o.spool.page(queue, state, {
        limit,
        previewBytes,
        ...(cursor.after === undefined ? {} : { after: cursor.after }),
      });
      if (spooled.next !== null) return { jobs: spooled.jobs, next: `s${spooled.next}` };
      jobs.push(...spooled.jobs);
    }
    const listed = new Set(jobs.map((j) => j.id));
    const types = TYPES[state];
    const bull = await this.#o.bull.run(
      async ({ queue: q }) => {
        let { type, offset } = cursor.spool ? { type: 0, offset: 0 } : cursor;
        const found: BullJob[] = [];
        // A few rounds at most: retrying jobs skipped while listing delayed ones (or the reverse)
        // must not turn one page into a scan of the whole set.
        for (let round = 0; round < 5 && jobs.length + found.length < limit && type < types.length; round++) {
          const want = limit - jobs.length - found.length;
          const raw = (await q(queue).getJobs([types[type] ?? 'wait'], offset, offset + want - 1, true)) as (
            BullJob | undefined
          )[];
          offset += raw.length;
          for (const job of raw)
            if (job !== undefined && !listed.has(job.id ?? '') && inState(state, job)) found.push(job);
          if (raw.length < want) {
            type += 1;
            offset = 0;
          }
        }
        return { found, next: type < types.length ? `b${type}.${offset}` : null };
      },
      () => ({ found: [], next: null }),
      this.#o.deadlineMs,
    );
    return {
      jobs: [...jobs, ...bull.found.map((job) => jobPreview(queue, state, job, previewBytes))],
      next: bull.next,
    };
  }

  /**
   * The spool's job `id`, else BullMQ's. `BWK_ERR_QUEUE_REDIS_UNAVAILABLE` when the spool does not
   * hold it and Redis does not answer in time.
   */
  async job(queue: string, id: string): Promise<JobDetail | undefined> {
    const spooled = await this.#o.spool.job(queue, id);
    if (spooled !== undefined) return spooled;
    return this.#o.bull.run(
      async ({ queue: q }) => {
        const job = (await q(queue).getJob(id)) as BullJob | undefined;
        return job === undefined ? undefined : jobDetail(queue, job);
      },
      () => {
        throw bulwarkError('BWK_ERR_QUEUE_REDIS_UNAVAILABLE', {
          operation: 'read',
          queue,
          id,
          deadlineMs: this.#o.deadlineMs,
        });
      },
      this.#o.deadlineMs,
    );
  }

  /**
   * The spool's oldest waiting jobs, and BullMQ's: the oldest of its wait list and the next of its
   * prioritized jobs. Without an answer from Redis in time, the spool's alone.
   */
  async oldestWaiting(queue?: string): Promise<Map<string, number>> {
    const result = await this.#o.spool.oldestWaiting(queue);
    const bull = await this.#o.bull.run(
      async ({ queue: q, names }) => {
        const queues = queue === undefined ? await this.#queueNames(names) : [queue];
        return Promise.all(
          queues.map(async (name) => {
            const jobs = (await q(name).getJobs(['wait', 'prioritized'], 0, 0, true)) as (
              BullJob | undefined
            )[];
            return [name, jobs.filter((job) => job !== undefined).map(dueAt)] as const;
          }),
        );
      },
      () => [],
      this.#o.deadlineMs,
    );
    for (const [name, due] of bull) {
      const oldest = Math.min(result.get(name) ?? Infinity, ...due);
      if (Number.isFinite(oldest)) result.set(name, oldest);
    }
    return result;
  }

  /**
   * Redrives the spool's dead jobs, then BullMQ's; resolves with the ids redriven. Without an answer
   * from Redis in time, the spool's alone (BullMQ's may have been redriven late, unreported).
   */
  async redrive(queue: string, ids?: string[]): Promise<string[]> {
    checkQueue(queue);
    const done = await this.#o.spool.redrive(queue, ids);
    const bull = await this.#o.bull.run(
      async ({ queue: q }) => {
        const failed = ids === undefined ? ((await q(queue).getJobs(['failed'], 0, -1)) as BullJob[]) : [];
        for (const id of ids ?? []) {
          const job = (await q(queue).getJob(id)) as BullJob | undefined;
          if (job !== undefined && (await job.isFailed())) failed.push(job);
        }
        const redriven: string[] = [];
        for (const job of failed) {
          await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
          if (job.id !== undefined) redriven.push(job.id);
        }
        return redriven;
      },
      () => [],
      this.#o.deadlineMs,
    );
    return [...done, ...bull];
  }

  /** Promotes a delayed or retrying job of the spool, else of BullMQ. */
  promote(queue: string, id: string): Promise<void> {
    return this.#onJob('promote', queue, id, {
      spool: () => this.#o.spool.promote(queue, id),
      wanted: (job) => job.isDelayed(),
      state: 'delayed or retrying',
      apply: (job) => job.promote(),
    });
  }

  /** Deletes a job of the spool, else of BullMQ, that is not running. */
  remove(queue: string, id: string): Promise<void> {
    return this.#onJob('remove', queue, id, {
      spool: () => this.#o.spool.remove(queue, id),
      wanted: async (job) => !(await job.isActive()),
      state: 'waiting, delayed, retrying or dead',
      apply: (job) => job.remove(),
    });
  }

  /**
   * An operation on one job: the spool's if it holds the job, else BullMQ's. When BullMQ cannot be
   * asked, the spool's own failure if it had one (the store down), else
   * `BWK_ERR_QUEUE_REDIS_UNAVAILABLE`: "not found" is for BullMQ alone to say.
   */
  async #onJob(
    operation: string,
    queue: string,
    id: string,
    op: {
      spool: () => Promise<void>;
      wanted: (job: BullJob) => Promise<boolean>;
      state: string;
      apply: (job: BullJob) => Promise<void>;
    },
  ): Promise<void> {
    checkQueue(queue);
    const inSpool = await op.spool().then(
      () => undefined,
      (error: unknown) => ({ error }),
    );
    if (inSpool === undefined) return;
    await this.#o.bull.run(
      async ({ queue: q }) => {
        const job = (await q(queue).getJob(id)) as BullJob | undefined;
        if (job === undefined || !(await op.wanted(job)))
          throw bulwarkError('BWK_ERR_QUEUE_JOB_NOT_FOUND', { queue, id, state: op.state });
        await op.apply(job);
      },
      () => {
        if (!isBulwarkError(inSpool.error, 'BWK_ERR_QUEUE_JOB_NOT_FOUND')) throw inSpool.error;
        throw bulwarkError(
          'BWK_ERR_QUEUE_REDIS_UNAVAILABLE',
          { operation, queue, id, deadlineMs: this.#o.deadlineMs },
          { cause: inSpool.error },
        );
      },
      this.#o.deadlineMs,
    );
  }

  /**
   * Takes out of a queue's spool counts the jobs whose id BullMQ holds too (an add that missed its
   * deadline but reached Redis, a replay in flight): they run once, from BullMQ, so they count
   * once. Looks at the first {@link REPLAY_BATCH} spooled jobs; without answers, counts them all.
   */
  async #uncountKnown(queue: string, spooled: QueueCounts): Promise<void> {
    if (spooled.waiting + spooled.delayed + spooled.retrying + spooled.active === 0) return;
    const rows = await this.#o.jobs.unfinished(queue, this.#o.now(), REPLAY_BATCH).catch(() => []);
    if (rows.length === 0) return;
    const known = await this.#o.bull.run(
      ({ client }) => client.pipeline(rows.map((row) => ['exists', `${PREFIX}:${queue}:${row.id}`])).exec(),
      () => null,
      this.#o.deadlineMs,
    );
    rows.forEach((row, i) => {
      if (known?.[i]?.[1] === 1) spooled[row.reported] = Math.max(0, spooled[row.reported] - 1);
    });
  }

  /** Queues this process knows of, plus every BullMQ queue under Bulwark's prefix. */
  async #queueNames(names: () => Promise<string[]>): Promise<string[]> {
    return [...new Set([...this.#o.known, ...(await names())])];
  }
}

/** BullMQ's delayed jobs are delayed (never tried) or retrying (tried before). */
function inState(state: JobState, job: BullJob): boolean {
  return state === 'delayed' ? job.attemptsMade === 0 : state === 'retrying' ? job.attemptsMade > 0 : true;
}

/**
 * Where a page starts: in the spool (after its cursor `after`, if any), or in BullMQ at `offset` of
 * its job type number `type`. `BWK_ERR_QUEUE_OPTIONS` for anything else.
 */
function parseCursor(
  after: string | undefined,
): { spool: true; after: string | undefined } | { spool: false; type: number; offset: number } {
  if (after === undefined) return { spool: true, after: undefined };
  if (after.startsWith('s')) return { spool: true, after: after.slice(1) };
  const match = /^b(\d)\.(\d{1,9})$/.exec(after);
  if (match === null)
    throw optionsError(`after ${JSON.stringify(after)} is not the next of a page of this queue`);
  return { spool: false, type: Number(match[1]), offset: Number(match[2]) };
}

/** One queue's counts in BullMQ, by reported state (its delayed jobs all count as delayed). */
async function bullCounts(queue: Queue): Promise<QueueCounts> {
  const c = await queue.getJobCounts('wait', 'prioritized', 'delayed', 'active', 'failed');
  return {
    waiting: (c['wait'] ?? 0) + (c['prioritized'] ?? 0),
    delayed: c['delayed'] ?? 0,
    retrying: 0,
    active: c['active'] ?? 0,
    dead: c['failed'] ?? 0,
  };
}

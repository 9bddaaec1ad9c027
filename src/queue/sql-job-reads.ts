import { sql, type Kysely } from 'kysely';
import { guard } from '../store/errors.js';
import type { Store, StoreEngine, StoreTables } from '../store/types.js';
import { preview } from './preview.js';
import type { JobRow } from './sql-jobs.js';
import type { JobDetail, JobPreview, JobState, JobSummary, QueueCounts, StoredJobOptions } from './types.js';

/**
 * The job table as operators read it (the admin API, the CLI, metrics, the BullMQ driver's view of
 * its spool), one set of queries for SQLite and PostgreSQL: per-state counts, lists and pages of
 * jobs, one job, the oldest waiting job of each queue. States are reported as in {@link SqlJobs}'s
 * header: a queued job is `delayed`, `retrying` or `waiting` by its due time and attempts.
 */
export class SqlJobReads {
  readonly #db: Kysely<StoreTables>;
  readonly #engine: StoreEngine;
  /** The store's {@link Store.readAside}: whole-table reads off the event loop. */
  readonly #readAside: Store['readAside'];

  constructor(store: Pick<Store, 'db' | 'engine' | 'readAside'>) {
    this.#db = store.db;
    this.#engine = store.engine;
    this.#readAside = (query) => store.readAside(query);
  }

  /**
   * Per-state counts of every queue that has jobs (or of `queue`). The count walks every job of the
   * table (or queue), so it runs aside (`Store.readAside`): on SQLite, off the event loop.
   */
  counts(now: number, queue?: string): Promise<Map<string, QueueCounts>> {
    return guard(this.#engine, 'jobs.counts', async () => {
      let query = this.#db
        .selectFrom('bulwark_jobs')
        .select((eb) => ['queue', reported(now).as('reported'), eb.fn.countAll<number>().as('n')])
        .groupBy(['queue', 'reported']);
      if (queue !== undefined) query = query.where('queue', '=', queue);
      const result = new Map<string, QueueCounts>();
      for (const row of await this.#readAside(query)) {
        let counts = result.get(row.queue);
        if (counts === undefined) {
          counts = emptyCounts();
          result.set(row.queue, counts);
        }
        counts[row.reported] = Number(row.n);
      }
      return result;
    });
  }

  /**
   * The ids of `queue`'s queued and active jobs with their reported state, oldest first, at most
   * `limit`. Read aside too: the BullMQ driver's counts read 500 of them at each scrape (~5 ms).
   */
  unfinished(queue: string, now: number, limit: number): Promise<{ id: string; reported: JobState }[]> {
    return guard(this.#engine, 'jobs.unfinished', () =>
      this.#readAside(
        this.#db
          .selectFrom('bulwark_jobs')
          .select(['id', reported(now).as('reported')])
          .where('queue', '=', queue)
          .where('state', 'in', ['queued', 'active'])
          .orderBy('seq')
          .limit(limit),
      ),
    );
  }

  /** Jobs of `queue` in `state`, oldest first, at most `limit`. */
  list(queue: string, state: JobState, now: number, limit: number): Promise<JobSummary[]> {
    return guard(this.#engine, 'jobs.list', async () => {
      const rows = await this.#inState(queue, state, now).selectAll().orderBy('seq').limit(limit).execute();
      return rows.map((row) => summary(row, state));
    });
  }

  /**
   * One page of `queue`'s jobs in `state` after the job `afterSeq`, oldest first, each with the first
   * `previewBytes` of its data and error (the store sends no more of them) and their sizes; `next` is
   * the seq to continue after, null on the last page.
   */
  page(
    queue: string,
    state: JobState,
    now: number,
    opts: { limit: number; afterSeq: number | undefined; previewBytes: number },
  ): Promise<{ jobs: JobPreview[]; next: number | null }> {
    return guard(this.#engine, 'jobs.page', async () => {
      const cut = sql.lit(opts.previewBytes);
      const bytes = (column: 'data' | 'last_error') =>
        this.#engine === 'postgres'
          ? sql<number | null>`octet_length(${sql.ref(column)})`
          : sql<number | null>`length(cast(${sql.ref(column)} as blob))`;
      let query = this.#inState(queue, state, now).select([
        'seq',
        'queue',
        'id',
        'attempts',
        'max_attempts',
        'priority',
        'created_at',
        'run_at',
        sql<string>`substr(data, 1, ${cut})`.as('data_start'),
        bytes('data').as('data_bytes'),
        sql<string | null>`substr(last_error, 1, ${cut})`.as('error_start'),
        bytes('last_error').as('error_bytes'),
      ]);
      if (opts.afterSeq !== undefined) query = query.where('seq', '>', opts.afterSeq);
      const rows = await query
        .orderBy('seq')
        .limit(opts.limit + 1)
        .execute();
      const shown = rows.slice(0, opts.limit);
      return {
        jobs: shown.map((row) => ({
          ...fields(row, state),
          data: preview(row.data_start, opts.previewBytes, Number(row.data_bytes)),
          lastError:
            row.error_start === null
              ? null
              : preview(row.error_start, opts.previewBytes, Number(row.error_bytes)),
        })),
        next: rows.length > opts.limit ? Number(shown.at(-1)?.seq) : null,
      };
    });
  }

  /** The job `id` of `queue` with its state at `now`, or undefined. */
  job(queue: string, id: string, now: number): Promise<JobDetail | undefined> {
    return guard(this.#engine, 'jobs.job', async () => {
      const row = await this.#db
        .selectFrom('bulwark_jobs')
        .selectAll()
        .select(reported(now).as('reported'))
        .where('queue', '=', queue)
        .where('id', '=', id)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      return {
        ...summary(row, row.reported),
        startedAt: row.started_at === null ? null : Number(row.started_at),
        finishedAt: row.finished_at === null ? null : Number(row.finished_at),
        options: row.options === null ? {} : (JSON.parse(row.options) as StoredJobOptions),
      };
    });
  }

  /** When the oldest waiting job of each queue with waiting jobs (or of `queue`) fell due. */
  oldestWaiting(now: number, queue?: string): Promise<Map<string, number>> {
    return guard(this.#engine, 'jobs.oldestWaiting', async () => {
      // On SQLite `+state` keeps the planner off the lease index (state first), whose every hit is a
      // read of the row, data and all: the claim index holds all this needs (0.7 ms instead of 10
      // ms with 10,000 jobs of 2 KB).
      const state = this.#engine === 'sqlite' ? sql<string>`+state` : sql<string>`state`;
      let query = this.#db
        .selectFrom('bulwark_jobs')
        .select((eb) => ['queue', eb.fn.min<number>('run_at').as('due')])
        .where(state, '=', 'queued')
        .where('run_at', '<=', now)
        .groupBy('queue');
      if (queue !== undefined) query = query.where('queue', '=', queue);
      const rows = await query.execute();
      return new Map(rows.map((row) => [row.queue, Number(row.due)]));
    });
  }

  /** The rows of `queue` in reported `state` at `now`. */
  #inState(queue: string, state: JobState, now: number) {
    const query = this.#db.selectFrom('bulwark_jobs').where('queue', '=', queue);
    if (state === 'active' || state === 'dead') return query.where('state', '=', state);
    const queued = query.where('state', '=', 'queued');
    if (state === 'waiting') return queued.where('run_at', '<=', now);
    return queued.where('run_at', '>', now).where('attempts', state === 'retrying' ? '>' : '=', 0);
  }
}

/** A row's reported state at `now`: a queued job is waiting (due), retrying or delayed. */
function reported(now: number) {
  return sql<JobState>`case when state <> 'queued' then state when run_at <= ${now} then 'waiting' when attempts > 0 then 'retrying' else 'delayed' end`;
}

export function emptyCounts(): QueueCounts {
  return { waiting: 0, delayed: 0, retrying: 0, active: 0, dead: 0 };
}

function summary(row: JobRow, state: JobState): JobSummary {
  return { ...fields(row, state), lastError: row.last_error, data: JSON.parse(row.data) as unknown };
}

/** What every view of a job shows besides its data and error. */
function fields(
  row: Pick<JobRow, 'queue' | 'id' | 'attempts' | 'max_attempts' | 'priority' | 'created_at' | 'run_at'>,
  state: JobState,
) {
  return {
    queue: row.queue,
    id: row.id,
    state,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    priority: row.priority,
    createdAt: Number(row.created_at),
    runAt: Number(row.run_at),
  };
}

import { sql, type Kysely, type Selectable } from 'kysely';
import { guard } from '../store/errors.js';
import type { StoreEngine, StoreTables } from '../store/types.js';
import type { StoredJobOptions } from './types.js';

export type JobRow = Selectable<StoreTables['bulwark_jobs']>;

/** A job to insert. */
export interface NewJob {
  queue: string;
  id: string;
  priority: number;
  runAt: number;
  maxAttempts: number;
  options: StoredJobOptions | undefined;
  /** JSON text of the data. */
  data: string;
  createdAt: number;
}

/** Rows per multi-row statement (14 parameters each stays far below SQLite's limit). */
const CHUNK = 500;

/**
 * The job table's changes, one set for SQLite and PostgreSQL (its reads for operators: SqlJobReads).
 * Storage states are `queued`, `active` and `dead`; completed jobs are deleted. Reported states are
 * derived: a queued job is `delayed` (not due, never tried), `retrying` (not due, tried before) or
 * `waiting` (due).
 *
 * Every change to an active job is conditional on the caller still holding its lease
 * (`lease_owner`), so a worker whose lease expired and was recovered cannot complete or fail the
 * job under the feet of the one that took it over.
 */
export class SqlJobs {
  readonly #db: Kysely<StoreTables>;
  readonly #engine: StoreEngine;

  constructor(db: Kysely<StoreTables>, engine: StoreEngine) {
    this.#db = db;
    this.#engine = engine;
  }

  /** Inserts jobs (duplicates of a queued, active or dead job id are skipped); one transaction. */
  insert(jobs: NewJob[]): Promise<void> {
    return guard(this.#engine, 'jobs.insert', async () => {
      const write = async (db: Kysely<StoreTables>) => {
        for (let i = 0; i < jobs.length; i += CHUNK) {
          await db
            .insertInto('bulwark_jobs')
            .values(
              jobs.slice(i, i + CHUNK).map((j) => ({
                queue: j.queue,
                id: j.id,
                state: 'queued',
                priority: j.priority,
                run_at: j.runAt,
                attempts: 0,
                max_attempts: j.maxAttempts,
                options: j.options === undefined ? null : JSON.stringify(j.options),
                data: j.data,
                created_at: j.createdAt,
              })),
            )
            .onConflict((oc) => oc.columns(['queue', 'id']).doNothing())
            .execute();
        }
      };
      if (jobs.length <= CHUNK) await write(this.#db);
      else await this.#db.transaction().execute(write);
    });
  }

  /**
   * Leases up to `limit` due jobs of `queue` to `owner` until `now + leaseMs`, in priority, run
   * time, insertion order, counting an attempt on each. On PostgreSQL concurrent claimers skip each
   * other's rows (`FOR UPDATE SKIP LOCKED`); SQLite runs one writer at a time.
   */
  claim(queue: string, limit: number, owner: string, now: number, leaseMs: number): Promise<JobRow[]> {
    return guard(this.#engine, 'jobs.claim', async () => {
      let due = this.#db
        .selectFrom('bulwark_jobs')
        .select('seq')
        .where('queue', '=', queue)
        .where('state', '=', 'queued')
        .where('run_at', '<=', now)
        .orderBy('priority')
        .orderBy('run_at')
        .orderBy('seq')
        .limit(limit);
      if (this.#engine === 'postgres') due = due.forUpdate().skipLocked();
      const rows = await this.#db
        .updateTable('bulwark_jobs')
        .set((eb) => ({
          state: 'active',
          lease_owner: owner,
          lease_until: now + leaseMs,
          attempts: eb('attempts', '+', 1),
          started_at: now,
        }))
        .where('seq', 'in', due)
        .returningAll()
        .execute();
      // RETURNING order is unspecified: restore the claim order.
      return rows.sort((a, b) => a.priority - b.priority || a.run_at - b.run_at || a.seq - b.seq);
    });
  }

  /**
   * Leases up to `limit` queued jobs of any queue (due or not) to `owner` without counting an
   * attempt: the outage spool's replay takes jobs this way, hands them to BullMQ, then deletes them
   * with {@link complete} (or gives them back with {@link release}, which must then not uncount).
   */
  take(limit: number, owner: string, now: number, leaseMs: number): Promise<JobRow[]> {
    return guard(this.#engine, 'jobs.take', async () => {
      let queued = this.#db
        .selectFrom('bulwark_jobs')
        .select('seq')
        .where('state', '=', 'queued')
        .orderBy('seq')
        .limit(limit);
      if (this.#engine === 'postgres') queued = queued.forUpdate().skipLocked();
      return this.#db
        .updateTable('bulwark_jobs')
        .set({ state: 'active', lease_owner: owner, lease_until: now + leaseMs })
        .where('seq', 'in', queued)
        .returningAll()
        .execute();
    });
  }

  /** Deletes completed jobs still leased to `owner`. */
  complete(owner: string, seqs: number[]): Promise<void> {
    return guard(this.#engine, 'jobs.complete', async () => {
      for (let i = 0; i < seqs.length; i += CHUNK) {
        await this.#db
          .deleteFrom('bulwark_jobs')
          .where('seq', 'in', seqs.slice(i, i + CHUNK))
          .where('lease_owner', '=', owner)
          .execute();
      }
    });
  }

  /** A failed attempt: queued again at `runAt`, or dead when `dead`. */
  fail(owner: string, seq: number, outcome: { dead: boolean; runAt: number; error: string; now: number }) {
    return guard(this.#engine, 'jobs.fail', async () => {
      await this.#db
        .updateTable('bulwark_jobs')
        .set({
          state: outcome.dead ? 'dead' : 'queued',
          run_at: outcome.runAt,
          last_error: outcome.error,
          lease_owner: null,
          lease_until: null,
          finished_at: outcome.dead ? outcome.now : null,
        })
        .where('seq', '=', seq)
        .where('lease_owner', '=', owner)
        .execute();
    });
  }

  /**
   * Gives active jobs back without counting their attempt (graceful shutdown past its deadline);
   * `uncount: false` for jobs taken with {@link take}, which counted none.
   */
  release(owner: string, seqs: number[], uncount = true): Promise<void> {
    if (seqs.length === 0) return Promise.resolve();
    return guard(this.#engine, 'jobs.release', async () => {
      await this.#db
        .updateTable('bulwark_jobs')
        .set((eb) => ({
          state: 'queued',
          lease_owner: null,
          lease_until: null,
          attempts: uncount ? eb('attempts', '-', 1) : eb.ref('attempts'),
        }))
        .where('seq', 'in', seqs)
        .where('lease_owner', '=', owner)
        .execute();
    });
  }

  /** Extends every lease `owner` holds to `until`. */
  extend(owner: string, until: number): Promise<void> {
    return guard(this.#engine, 'jobs.extend', async () => {
      await this.#db
        .updateTable('bulwark_jobs')
        .set({ lease_until: until })
        .where('state', '=', 'active')
        .where('lease_owner', '=', owner)
        .execute();
    });
  }

  /**
   * Active jobs whose lease expired (their worker crashed, was killed or stalled) go back to the
   * queue, or are dead-lettered when that was their last attempt. Returns how many were recovered.
   */
  recover(now: number): Promise<number> {
    return guard(this.#engine, 'jobs.recover', async () => {
      const result = await this.#db
        .updateTable('bulwark_jobs')
        .set({
          state: sql<string>`case when attempts >= max_attempts then 'dead' else 'queued' end`,
          finished_at: sql<
            number | null
          >`case when attempts >= max_attempts then cast(${now} as bigint) else null end`,
          run_at: now,
          last_error: 'lease expired: the worker crashed, was killed or stalled',
          lease_owner: null,
          lease_until: null,
        })
        .where('state', '=', 'active')
        .where('lease_until', '<', now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    });
  }

  /** When the next queued job of `queue` becomes due, if any is queued. */
  nextRunAt(queue: string): Promise<number | undefined> {
    return guard(this.#engine, 'jobs.nextRunAt', async () => {
      const row = await this.#db
        .selectFrom('bulwark_jobs')
        .select((eb) => eb.fn.min<number>('run_at').as('next'))
        .where('queue', '=', queue)
        .where('state', '=', 'queued')
        .executeTakeFirst();
      return row?.next === null || row?.next === undefined ? undefined : Number(row.next);
    });
  }

  /**
   * Dead jobs of `queue` (all, or those in `ids`) go back to the queue with fresh attempts. Returns
   * the ids redriven.
   */
  redrive(queue: string, now: number, ids?: string[]): Promise<string[]> {
    return guard(this.#engine, 'jobs.redrive', async () => {
      let query = this.#db
        .updateTable('bulwark_jobs')
        .set({ state: 'queued', attempts: 0, run_at: now, finished_at: null })
        .where('queue', '=', queue)
        .where('state', '=', 'dead');
      if (ids !== undefined) {
        if (ids.length === 0) return [];
        query = query.where('id', 'in', ids);
      }
      const rows = await query.returning('id').execute();
      return rows.map((r) => r.id);
    });
  }

  /** A queued job not yet due (delayed or retrying) becomes due now. Returns false if none matched. */
  promote(queue: string, id: string, now: number): Promise<boolean> {
    return guard(this.#engine, 'jobs.promote', async () => {
      const result = await this.#db
        .updateTable('bulwark_jobs')
        .set({ run_at: now })
        .where('queue', '=', queue)
        .where('id', '=', id)
        .where('state', '=', 'queued')
        .where('run_at', '>', now)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  /** Removes a job that is not active. Returns false if none matched. */
  remove(queue: string, id: string): Promise<boolean> {
    return guard(this.#engine, 'jobs.remove', async () => {
      const result = await this.#db
        .deleteFrom('bulwark_jobs')
        .where('queue', '=', queue)
        .where('id', '=', id)
        .where('state', '<>', 'active')
        .executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }
}

import { sql, type Kysely, type Transaction } from 'kysely';
import type { StoreTables } from '../store/types.js';
import type { ErrorLimits } from './limits.js';
import type { ErrorGroup, ErrorSample, ErrorSource, ErrorState } from './types.js';

/** Occurrences of one group gathered since the last write. */
export interface PendingGroup {
  fingerprint: string;
  type: string;
  message: string;
  culprit: string;
  source: ErrorSource;
  count: number;
  firstSeen: number;
  lastSeen: number;
  release: string;
  /** Sampled occurrences, without their id. */
  samples: Omit<ErrorSample, 'id'>[];
}

type GroupRow = StoreTables['bulwark_error_groups'];

function toGroup(row: GroupRow): ErrorGroup {
  return {
    fingerprint: row.fingerprint,
    type: row.type,
    message: row.message,
    culprit: row.culprit,
    source: row.source as ErrorSource,
    state: row.state as ErrorState,
    count: Number(row.count),
    firstSeen: Number(row.first_seen),
    lastSeen: Number(row.last_seen),
    firstRelease: row.first_release,
    lastRelease: row.last_release,
    resolvedAt: row.resolved_at === null ? undefined : Number(row.resolved_at),
    regressions: Number(row.regressions),
  };
}

/**
 * The error groups and their samples in the store (tables of migration 0004_errors), with the same
 * queries on SQLite and PostgreSQL.
 */
export class ErrorStore {
  readonly #db: Kysely<StoreTables>;

  constructor(db: Kysely<StoreTables>) {
    this.#db = db;
  }

  /**
   * Writes gathered occurrences in one transaction: each group's counters are added to (a resolved
   * group that recurs is re-opened and counts a regression; an ignored one stays ignored), its
   * samples inserted, and only the newest of them kept (per source, `limits.*SamplesPerGroup`);
   * then the caps are applied (see {@link ErrorStore.enforceLimits}).
   */
  async write(pending: PendingGroup[], limits: ErrorLimits): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      for (const group of pending) {
        const keepSamples =
          group.source === 'browser' ? limits.browserSamplesPerGroup : limits.serverSamplesPerGroup;
        const old = (column: string) => sql.ref(`bulwark_error_groups.${column}`);
        await trx
          .insertInto('bulwark_error_groups')
          .values({
            fingerprint: group.fingerprint,
            type: group.type,
            message: group.message,
            culprit: group.culprit,
            source: group.source,
            state: 'open',
            count: group.count,
            first_seen: group.firstSeen,
            last_seen: group.lastSeen,
            first_release: group.release,
            last_release: group.release,
            resolved_at: null,
            regressions: 0,
          })
          .onConflict((oc) =>
            oc.column('fingerprint').doUpdateSet({
              count: sql<number>`${old('count')} + ${group.count}`,
              last_seen: sql<number>`case when ${old('last_seen')} > ${group.lastSeen} then ${old('last_seen')} else ${group.lastSeen} end`,
              last_release: group.release,
              culprit: group.culprit,
              state: sql<string>`case when ${old('state')} = 'resolved' then 'open' else ${old('state')} end`,
              regressions: sql<number>`${old('regressions')} + case when ${old('state')} = 'resolved' then 1 else 0 end`,
              resolved_at: sql<
                number | null
              >`case when ${old('state')} = 'resolved' then null else ${old('resolved_at')} end`,
            }),
          )
          .execute();
        if (group.samples.length === 0) continue;
        await trx
          .insertInto('bulwark_error_events')
          .values(
            group.samples.map((sample) => ({
              fingerprint: group.fingerprint,
              at: sample.at,
              release: sample.release,
              data: JSON.stringify(sample),
            })),
          )
          .execute();
        // Keeps the newest `keepSamples`: deletes from the first one past them.
        const cut = trx
          .selectFrom('bulwark_error_events')
          .select('id')
          .where('fingerprint', '=', group.fingerprint)
          .orderBy('id', 'desc')
          .limit(1)
          .offset(keepSamples);
        await trx
          .deleteFrom('bulwark_error_events')
          .where('fingerprint', '=', group.fingerprint)
          .where('id', '<=', cut)
          .execute();
      }
      await this.enforceLimits(trx, limits);
    });
  }

  /**
   * Applies the caps: browser groups beyond `maxBrowserGroups` are deleted least seen first (then
   * least recently), server groups beyond `maxServerGroups` least recently seen first, each with
   * their samples; then server samples beyond `maxServerSamples`, oldest first. At most 1 000
   * groups go per call (a store filled before the caps existed shrinks over a few writes).
   */
  async enforceLimits(trx: Transaction<StoreTables>, limits: ErrorLimits): Promise<void> {
    for (const source of ['browser', 'server'] as const) {
      const max = source === 'browser' ? limits.maxBrowserGroups : limits.maxServerGroups;
      const { n } = await trx
        .selectFrom('bulwark_error_groups')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('source', '=', source)
        .executeTakeFirstOrThrow();
      const excess = Math.min(Number(n) - max, 1_000);
      if (excess <= 0) continue;
      let victims = trx.selectFrom('bulwark_error_groups').select('fingerprint').where('source', '=', source);
      victims =
        source === 'browser' ? victims.orderBy('count').orderBy('last_seen') : victims.orderBy('last_seen');
      const doomed = (await victims.limit(excess).execute()).map((row) => row.fingerprint);
      for (let i = 0; i < doomed.length; i += 500) {
        const chunk = doomed.slice(i, i + 500);
        await trx.deleteFrom('bulwark_error_events').where('fingerprint', 'in', chunk).execute();
        await trx.deleteFrom('bulwark_error_groups').where('fingerprint', 'in', chunk).execute();
      }
    }
    const serverGroups = trx
      .selectFrom('bulwark_error_groups')
      .select('fingerprint')
      .where('source', '=', 'server');
    const cut = await trx
      .selectFrom('bulwark_error_events')
      .select('id')
      .where('fingerprint', 'in', serverGroups)
      .orderBy('id', 'desc')
      .limit(1)
      .offset(limits.maxServerSamples)
      .executeTakeFirst();
    if (cut !== undefined)
      await trx
        .deleteFrom('bulwark_error_events')
        .where('id', '<=', cut.id)
        .where('fingerprint', 'in', serverGroups)
        .execute();
  }

  /** Groups, most recently seen first. */
  async list(opts: { state?: ErrorState; source?: ErrorSource; limit: number }): Promise<ErrorGroup[]> {
    let query = this.#db.selectFrom('bulwark_error_groups').selectAll();
    if (opts.state !== undefined) query = query.where('state', '=', opts.state);
    if (opts.source !== undefined) query = query.where('source', '=', opts.source);
    const rows = await query.orderBy('last_seen', 'desc').limit(opts.limit).execute();
    return rows.map(toGroup);
  }

  async get(fingerprint: string): Promise<ErrorGroup | undefined> {
    const row = await this.#db
      .selectFrom('bulwark_error_groups')
      .selectAll()
      .where('fingerprint', '=', fingerprint)
      .executeTakeFirst();
    return row === undefined ? undefined : toGroup(row);
  }

  /** The group's stored samples, newest first. */
  async samples(fingerprint: string, limit: number): Promise<ErrorSample[]> {
    const rows = await this.#db
      .selectFrom('bulwark_error_events')
      .select(['id', 'data'])
      .where('fingerprint', '=', fingerprint)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((row) => ({ ...(JSON.parse(row.data) as Omit<ErrorSample, 'id'>), id: Number(row.id) }));
  }

  /** Sets the state; resolves with the group before and after, or undefined when there is none. */
  async setState(
    fingerprint: string,
    state: ErrorState,
    now: number,
  ): Promise<{ before: ErrorGroup; after: ErrorGroup } | undefined> {
    return this.#db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('bulwark_error_groups')
        .selectAll()
        .where('fingerprint', '=', fingerprint)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      const resolvedAt = state === 'resolved' ? now : null;
      await trx
        .updateTable('bulwark_error_groups')
        .set({ state, resolved_at: resolvedAt })
        .where('fingerprint', '=', fingerprint)
        .execute();
      return { before: toGroup(row), after: toGroup({ ...row, state, resolved_at: resolvedAt }) };
    });
  }

  /** Deletes samples older than `before`, and groups not seen since then with their samples. */
  async prune(before: number): Promise<{ groups: number; samples: number }> {
    return this.#db.transaction().execute(async (trx) => {
      const stale = trx
        .selectFrom('bulwark_error_groups')
        .select('fingerprint')
        .where('last_seen', '<', before);
      const orphans = await trx
        .deleteFrom('bulwark_error_events')
        .where('fingerprint', 'in', stale)
        .executeTakeFirst();
      const groups = await trx
        .deleteFrom('bulwark_error_groups')
        .where('last_seen', '<', before)
        .executeTakeFirst();
      const old = await trx.deleteFrom('bulwark_error_events').where('at', '<', before).executeTakeFirst();
      return {
        groups: Number(groups.numDeletedRows),
        samples: Number(orphans.numDeletedRows) + Number(old.numDeletedRows),
      };
    });
  }
}

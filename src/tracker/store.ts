import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { StoreTables } from '../store/types.js';
import type { ErrorLimits } from './limits.js';
import type { ErrorGroup, ErrorSample, ErrorSource, ErrorState } from './types.js';
import { decodeSketch, encodeSketch, estimateUsers, sketchOf } from './users.js';

/** The columns and table of migration 0009_error_trends, outside the shared `StoreTables`. */
export type ErrorTrendTables = {
  bulwark_error_groups: {
    /** Users affected, estimated from `users_sketch`. */
    users: number;
    /** Base64 HyperLogLog sketch of the users' hashed ids (src/tracker/users.ts), or null. */
    users_sketch: string | null;
  };
  bulwark_error_hours: {
    fingerprint: string;
    /** The hour's start, ms since the epoch. */
    hour: number;
    count: number;
  };
};
type Tables = StoreTables & ErrorTrendTables;

/** One hour in ms: the width of the hourly counts. */
export const HOUR_MS = 3_600_000;

/** The start of the hour `at` (ms) falls in. */
export function hourOf(at: number): number {
  return at - (at % HOUR_MS);
}

/** Where a page of groups starts: after this group in the list's order (last seen, newest first). */
export interface GroupCursor {
  lastSeen: number;
  fingerprint: string;
}

/** Which groups a list shows. */
export interface GroupFilter {
  state?: ErrorState;
  source?: ErrorSource;
  /** Case-insensitive substring of the type, message template or culprit. */
  q?: string;
}

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
  /** Occurrences by hour (its start, ms). */
  hours: Map<number, number>;
  /** Keys of the users who met it ({@link userKey}), counted into the group's sketch. */
  users: Set<string>;
}

type GroupRow = Selectable<Tables['bulwark_error_groups']>;

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
    users: Number(row.users),
  };
}

/** `%text%` for LIKE, with the wildcards of `text` escaped (by a backslash). */
function containing(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * The error groups and their samples in the store (tables of migration 0004_errors), with the same
 * queries on SQLite and PostgreSQL.
 */
export class ErrorStore {
  readonly #db: Kysely<Tables>;

  constructor(db: Kysely<StoreTables>) {
    this.#db = db.withTables<ErrorTrendTables>();
  }

  /**
   * Writes gathered occurrences in one transaction: each group's counters are added to (a resolved
   * group that recurs is re-opened and counts a regression; an ignored one stays ignored), its
   * samples inserted, and only the newest of them kept (per source, `limits.*SamplesPerGroup`);
   * then the caps are applied (see {@link ErrorStore.enforceLimits}).
   */
  async write(pending: PendingGroup[], limits: ErrorLimits): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      const sketches = await this.#sketches(
        trx,
        pending.filter((g) => g.users.size > 0).map((g) => g.fingerprint),
      );
      for (const group of pending) {
        // Merged here, not in SQL: two instances writing one group at once may lose one side's
        // users of that second (an estimate either way), never its counts.
        const sketch =
          group.users.size === 0 ? undefined : sketchOf(group.users, sketches.get(group.fingerprint));
        const users =
          sketch === undefined
            ? undefined
            : { users: estimateUsers(sketch), users_sketch: encodeSketch(sketch) };
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
            ...(users ?? { users: 0, users_sketch: null }),
          })
          .onConflict((oc) =>
            oc.column('fingerprint').doUpdateSet({
              ...users,
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
      await this.#addHours(trx, pending);
      await this.enforceLimits(trx, limits);
    });
  }

  /** The stored user sketches of `fingerprints` (those with one). */
  async #sketches(trx: Transaction<Tables>, fingerprints: string[]): Promise<Map<string, Uint8Array>> {
    const found = new Map<string, Uint8Array>();
    for (let i = 0; i < fingerprints.length; i += 500) {
      const rows = await trx
        .selectFrom('bulwark_error_groups')
        .select(['fingerprint', 'users_sketch'])
        .where('fingerprint', 'in', fingerprints.slice(i, i + 500))
        .where('users_sketch', 'is not', null)
        .execute();
      for (const row of rows) {
        const sketch = decodeSketch(row.users_sketch);
        if (sketch !== undefined) found.set(row.fingerprint, sketch);
      }
    }
    return found;
  }

  /** Adds the gathered hourly counts (one statement per 500 group-hours). */
  async #addHours(trx: Transaction<Tables>, pending: PendingGroup[]): Promise<void> {
    const rows = pending.flatMap((g) =>
      [...g.hours].map(([hour, count]) => ({ fingerprint: g.fingerprint, hour, count })),
    );
    for (let i = 0; i < rows.length; i += 500)
      await trx
        .insertInto('bulwark_error_hours')
        .values(rows.slice(i, i + 500))
        .onConflict((oc) =>
          oc
            .columns(['fingerprint', 'hour'])
            .doUpdateSet({ count: (eb) => eb('bulwark_error_hours.count', '+', eb.ref('excluded.count')) }),
        )
        .execute();
  }

  /**
   * Applies the caps: browser groups beyond `maxBrowserGroups` are deleted least seen first (then
   * least recently), server groups beyond `maxServerGroups` least recently seen first, each with
   * their samples; then server samples beyond `maxServerSamples`, oldest first. At most 1 000
   * groups go per call (a store filled before the caps existed shrinks over a few writes).
   */
  async enforceLimits(trx: Transaction<Tables>, limits: ErrorLimits): Promise<void> {
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
        await trx.deleteFrom('bulwark_error_hours').where('fingerprint', 'in', chunk).execute();
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

  /**
   * Groups of `filter`, most recently seen first (ties by fingerprint, descending), at most `limit`,
   * starting after `after`: keyset paging on the (state, last_seen) or (last_seen, fingerprint) index.
   */
  async list(opts: GroupFilter & { limit: number; after?: GroupCursor | undefined }): Promise<ErrorGroup[]> {
    let query = this.#filtered(opts).selectAll();
    const { after } = opts;
    if (after !== undefined)
      query = query.where((eb) =>
        eb.or([
          eb('last_seen', '<', after.lastSeen),
          eb.and([eb('last_seen', '=', after.lastSeen), eb('fingerprint', '<', after.fingerprint)]),
        ]),
      );
    const rows = await query
      .orderBy('last_seen', 'desc')
      .orderBy('fingerprint', 'desc')
      .limit(opts.limit)
      .execute();
    return rows.map(toGroup);
  }

  /** How many groups `filter` matches. */
  async count(filter: GroupFilter): Promise<number> {
    const row = await this.#filtered(filter)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  #filtered(filter: GroupFilter) {
    let query = this.#db.selectFrom('bulwark_error_groups');
    if (filter.state !== undefined) query = query.where('state', '=', filter.state);
    if (filter.source !== undefined) query = query.where('source', '=', filter.source);
    const q = filter.q?.trim() ?? '';
    if (q !== '') {
      const pattern = containing(q);
      const like = (column: 'type' | 'message' | 'culprit') =>
        sql<boolean>`lower(${sql.ref(column)}) like ${pattern} escape '\\'`;
      query = query.where((eb) => eb.or([like('type'), like('message'), like('culprit')]));
    }
    return query;
  }

  /**
   * Occurrences per hour of each of `fingerprints` in the `hours` hours up to the one `now` falls in,
   * oldest first (zeros included): one query by the primary key, whatever the number of groups.
   */
  async hourly(fingerprints: string[], now: number, hours = 24): Promise<Map<string, number[]>> {
    const last = hourOf(now);
    const first = last - (hours - 1) * HOUR_MS;
    const result = new Map(fingerprints.map((f) => [f, new Array<number>(hours).fill(0)]));
    if (fingerprints.length === 0) return result;
    const rows = await this.#db
      .selectFrom('bulwark_error_hours')
      .select(['fingerprint', 'hour', 'count'])
      .where('fingerprint', 'in', fingerprints)
      .where('hour', '>=', first)
      .where('hour', '<=', last)
      .execute();
    for (const row of rows) {
      const counts = result.get(row.fingerprint);
      const index = (Number(row.hour) - first) / HOUR_MS;
      if (counts !== undefined && index >= 0 && index < hours) counts[index] = Number(row.count);
    }
    return result;
  }

  async get(fingerprint: string): Promise<ErrorGroup | undefined> {
    const row = await this.#db
      .selectFrom('bulwark_error_groups')
      .selectAll()
      .where('fingerprint', '=', fingerprint)
      .executeTakeFirst();
    return row === undefined ? undefined : toGroup(row);
  }

  /** One stored sample of the group; undefined when there is none with that id. */
  async sample(fingerprint: string, id: number): Promise<ErrorSample | undefined> {
    const row = await this.#db
      .selectFrom('bulwark_error_events')
      .select(['id', 'data'])
      .where('fingerprint', '=', fingerprint)
      .where('id', '=', id)
      .executeTakeFirst();
    return row === undefined
      ? undefined
      : { ...(JSON.parse(row.data) as Omit<ErrorSample, 'id'>), id: Number(row.id) };
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

  /**
   * Deletes samples older than `before`, groups not seen since then with their samples and hourly
   * counts, and hourly counts of hours that started before `hoursBefore`.
   */
  async prune(before: number, hoursBefore: number): Promise<{ groups: number; samples: number }> {
    return this.#db.transaction().execute(async (trx) => {
      const stale = trx
        .selectFrom('bulwark_error_groups')
        .select('fingerprint')
        .where('last_seen', '<', before);
      const orphans = await trx
        .deleteFrom('bulwark_error_events')
        .where('fingerprint', 'in', stale)
        .executeTakeFirst();
      await trx.deleteFrom('bulwark_error_hours').where('fingerprint', 'in', stale).execute();
      await trx.deleteFrom('bulwark_error_hours').where('hour', '<', hoursBefore).execute();
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

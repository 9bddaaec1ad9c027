import type { Kysely, Selectable, SelectQueryBuilder } from 'kysely';
import { bulwarkError } from '../errors/index.js';
import { describeError, guard } from './errors.js';
import type { KvEntry, KvRepository, StoreEngine, StoreTables } from './types.js';

type KvRow = Selectable<StoreTables['bulwark_kv']>;

/** Options of {@link SqlKvRepository}. */
export interface SqlKvRepositoryOptions {
  db: Kysely<StoreTables>;
  /** Only names the engine in error messages; the queries are the same on both. */
  engine: StoreEngine;
  /** Clock for `updatedAt`, in ms since the epoch (default `Date.now`). */
  now?: () => number;
}

/**
 * {@link KvRepository} over the `bulwark_kv` table, with one set of queries for SQLite and
 * PostgreSQL. Every write is a single statement, so a write is atomic and a compare-and-set
 * (`ifVersion`) cannot lose an update to a concurrent writer: the version check and the write happen
 * in the same statement under the row lock.
 *
 * Errors: `BWK_ERR_STORE_CONFLICT` on a failed compare-and-set, `BWK_ERR_STORE_VALUE_INVALID` for a
 * value JSON cannot hold, `BWK_ERR_STORE_UNAVAILABLE` for any database failure (cause attached).
 */
export class SqlKvRepository implements KvRepository {
  readonly #db: Kysely<StoreTables>;
  readonly #engine: StoreEngine;
  readonly #now: () => number;

  constructor(opts: SqlKvRepositoryOptions) {
    this.#db = opts.db;
    this.#engine = opts.engine;
    this.#now = opts.now ?? Date.now;
  }

  get<T = unknown>(namespace: string, key: string): Promise<KvEntry<T> | undefined> {
    return guard(this.#engine, 'kv.get', async () => {
      const row = await this.#db
        .selectFrom('bulwark_kv')
        .selectAll()
        .where('namespace', '=', namespace)
        .where('key', '=', key)
        .executeTakeFirst();
      return row === undefined ? undefined : toEntry<T>(row);
    });
  }

  getMany<T = unknown>(namespace: string, keys: readonly string[]): Promise<Map<string, KvEntry<T>>> {
    if (keys.length === 0) return Promise.resolve(new Map<string, KvEntry<T>>());
    return guard(this.#engine, 'kv.getMany', async () => {
      const found = new Map<string, KvEntry<T>>();
      // Chunks keep under SQLite's variable limit.
      for (let i = 0; i < keys.length; i += 500) {
        const rows = await this.#db
          .selectFrom('bulwark_kv')
          .selectAll()
          .where('namespace', '=', namespace)
          .where('key', 'in', keys.slice(i, i + 500))
          .execute();
        for (const row of rows) found.set(row.key, toEntry<T>(row));
      }
      return found;
    });
  }

  put<T = unknown>(
    namespace: string,
    key: string,
    value: T,
    opts: { ifVersion?: number } = {},
  ): Promise<KvEntry<T>> {
    return guard(this.#engine, 'kv.put', async () => {
      const json = serialise(namespace, key, value);
      const now = this.#now();
      const row = await this.#write(namespace, key, json, now, opts.ifVersion);
      if (row === undefined) {
        const actual = (await this.get(namespace, key))?.version ?? 0;
        throw bulwarkError('BWK_ERR_STORE_CONFLICT', { namespace, key, expected: opts.ifVersion, actual });
      }
      return toEntry<T>(row);
    });
  }

  delete(namespace: string, key: string): Promise<boolean> {
    return guard(this.#engine, 'kv.delete', async () => {
      const result = await this.#db
        .deleteFrom('bulwark_kv')
        .where('namespace', '=', namespace)
        .where('key', '=', key)
        .executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  deleteMany(namespace: string, keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return Promise.resolve(0);
    return guard(this.#engine, 'kv.deleteMany', async () => {
      let removed = 0;
      // Chunks keep under SQLite's variable limit.
      for (let i = 0; i < keys.length; i += 500) {
        const result = await this.#db
          .deleteFrom('bulwark_kv')
          .where('namespace', '=', namespace)
          .where('key', 'in', keys.slice(i, i + 500))
          .executeTakeFirst();
        removed += Number(result.numDeletedRows);
      }
      return removed;
    });
  }

  putMany<T = unknown>(namespace: string, entries: { key: string; value: T }[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    return guard(this.#engine, 'kv.putMany', async () => {
      const now = this.#now();
      const rows = entries.map(({ key, value }) => ({
        namespace,
        key,
        value: serialise(namespace, key, value),
        version: 1,
        updated_at: now,
      }));
      // One multi-row statement per chunk (atomic per chunk); chunks keep under SQLite's variable limit.
      for (let i = 0; i < rows.length; i += 1000) {
        await this.#db
          .insertInto('bulwark_kv')
          .values(rows.slice(i, i + 1000))
          .onConflict((oc) =>
            oc.columns(['namespace', 'key']).doUpdateSet((eb) => ({
              value: eb.ref('excluded.value'),
              version: eb(eb.ref('bulwark_kv.version'), '+', 1),
              updated_at: eb.ref('excluded.updated_at'),
            })),
          )
          .execute();
      }
    });
  }

  list<T = unknown>(
    namespace: string,
    opts: { prefix?: string; limit?: number; after?: string } = {},
  ): Promise<KvEntry<T>[]> {
    return guard(this.#engine, 'kv.list', async () => {
      let query = withPrefix(
        this.#db.selectFrom('bulwark_kv').selectAll().where('namespace', '=', namespace),
        opts.prefix,
      );
      if (opts.after !== undefined) query = query.where('key', '>', opts.after);
      query = query.orderBy('key', 'asc');
      if (opts.limit !== undefined) query = query.limit(opts.limit);
      const rows = await query.execute();
      return rows.map((row) => toEntry<T>(row));
    });
  }

  count(namespace: string, opts: { prefix?: string } = {}): Promise<number> {
    return guard(this.#engine, 'kv.count', async () => {
      const row = await withPrefix(
        this.#db
          .selectFrom('bulwark_kv')
          .select((eb) => eb.fn.countAll<number | string | bigint>().as('n'))
          .where('namespace', '=', namespace),
        opts.prefix,
      ).executeTakeFirst();
      return Number(row?.n ?? 0);
    });
  }

  /** One statement per mode; resolves `undefined` when the compare-and-set did not match. */
  #write(
    namespace: string,
    key: string,
    value: string,
    now: number,
    ifVersion: number | undefined,
  ): Promise<KvRow | undefined> {
    if (ifVersion === undefined) {
      return this.#db
        .insertInto('bulwark_kv')
        .values({ namespace, key, value, version: 1, updated_at: now })
        .onConflict((oc) =>
          oc.columns(['namespace', 'key']).doUpdateSet((eb) => ({
            value: eb.ref('excluded.value'),
            version: eb('bulwark_kv.version', '+', 1),
            updated_at: eb.ref('excluded.updated_at'),
          })),
        )
        .returningAll()
        .executeTakeFirst();
    }
    if (ifVersion === 0) {
      // DO NOTHING rather than letting the unique violation surface: no error text to parse per
      // engine, and on PostgreSQL a concurrent inserter waits for the first to commit, then skips.
      return this.#db
        .insertInto('bulwark_kv')
        .values({ namespace, key, value, version: 1, updated_at: now })
        .onConflict((oc) => oc.columns(['namespace', 'key']).doNothing())
        .returningAll()
        .executeTakeFirst();
    }
    return this.#db
      .updateTable('bulwark_kv')
      .set((eb) => ({ value, version: eb('version', '+', 1), updated_at: now }))
      .where('namespace', '=', namespace)
      .where('key', '=', key)
      .where('version', '=', ifVersion)
      .returningAll()
      .executeTakeFirst();
  }
}

/**
 * `query` narrowed to keys starting with `prefix` (unchanged without one). substr() instead of LIKE:
 * LIKE treats % and _ in the prefix as wildcards and is case-insensitive on SQLite but not on
 * PostgreSQL; both count characters, not bytes. The same prefix as a key range as well, so the
 * primary key index bounds the scan (both engines compare keys by code point: BINARY on SQLite,
 * collation "C" on PostgreSQL).
 */
function withPrefix<Q extends SelectQueryBuilder<StoreTables, 'bulwark_kv', object>>(
  query: Q,
  prefix: string | undefined,
): Q {
  if (prefix === undefined || prefix === '') return query;
  const length = [...prefix].length;
  let narrowed = query
    .where((eb) => eb(eb.fn<string>('substr', ['key', eb.lit(1), eb.lit(length)]), '=', prefix))
    .where('key', '>=', prefix);
  const end = successor(prefix);
  if (end !== undefined) narrowed = narrowed.where('key', '<', end);
  return narrowed as Q;
}

/** JSON text of `value`; throws `BWK_ERR_STORE_VALUE_INVALID` when JSON cannot represent it. */
export function serialise(namespace: string, key: string, value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw bulwarkError(
      'BWK_ERR_STORE_VALUE_INVALID',
      { namespace, key, detail: describeError(error) },
      { cause: error },
    );
  }
  // JSON.stringify returns undefined (not a string) for undefined, functions and symbols.
  if (json === undefined) {
    throw bulwarkError('BWK_ERR_STORE_VALUE_INVALID', {
      namespace,
      key,
      detail: `${typeof value} is not JSON`,
    });
  }
  return json;
}

function toEntry<T>(row: KvRow): KvEntry<T> {
  return {
    namespace: row.namespace,
    key: row.key,
    value: JSON.parse(row.value) as T,
    version: Number(row.version),
    updatedAt: Number(row.updated_at),
  };
}

/** The smallest string greater than every string starting with `prefix`, when one exists. */
function successor(prefix: string): string | undefined {
  const points = [...prefix];
  const last = points.pop()?.codePointAt(0);
  if (last === undefined || last >= 0x10ffff) return undefined;
  const next = last + 1 === 0xd800 ? 0xe000 : last + 1; // skip the surrogate range
  return points.join('') + String.fromCodePoint(next);
}

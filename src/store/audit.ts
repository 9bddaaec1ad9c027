import type { Kysely, Selectable } from 'kysely';
import { guard } from './errors.js';
import { serialise } from './kv.js';
import type { AuditLog, AuditRecord, StoreEngine, StoreTables } from './types.js';

type AuditRow = Selectable<StoreTables['bulwark_audit']>;

/** Records returned by `list()` when no `limit` is given. */
export const DEFAULT_AUDIT_LIMIT = 100;

/** Options of {@link SqlAuditLog}. */
export interface SqlAuditLogOptions {
  db: Kysely<StoreTables>;
  /** Only names the engine in error messages; the queries are the same on both. */
  engine: StoreEngine;
  /** Clock for records appended without `at`, in ms since the epoch (default `Date.now`). */
  now?: () => number;
}

/**
 * {@link AuditLog} over the `bulwark_audit` table, one set of queries for SQLite and PostgreSQL.
 * Ids only grow (never reused), so `beforeId` pages through history without gaps or repeats while
 * records are being appended. A resolved `append()` is committed.
 *
 * Errors: `BWK_ERR_STORE_VALUE_INVALID` for a `detail` JSON cannot hold, `BWK_ERR_STORE_UNAVAILABLE`
 * for any database failure (cause attached).
 */
export class SqlAuditLog implements AuditLog {
  readonly #db: Kysely<StoreTables>;
  readonly #engine: StoreEngine;
  readonly #now: () => number;

  constructor(opts: SqlAuditLogOptions) {
    this.#db = opts.db;
    this.#engine = opts.engine;
    this.#now = opts.now ?? Date.now;
  }

  append(entry: {
    actor: string;
    action: string;
    target: string;
    detail?: unknown;
    at?: number;
  }): Promise<AuditRecord> {
    return guard(this.#engine, 'audit.append', async () => {
      const detail = entry.detail === undefined ? null : serialise('audit', entry.target, entry.detail);
      const row = await this.#db
        .insertInto('bulwark_audit')
        .values({
          at: entry.at ?? this.#now(),
          actor: entry.actor,
          action: entry.action,
          target: entry.target,
          detail,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toRecord(row);
    });
  }

  /** Newest first; at most `limit` records (default {@link DEFAULT_AUDIT_LIMIT}). */
  list(opts: { limit?: number; target?: string; beforeId?: number } = {}): Promise<AuditRecord[]> {
    return guard(this.#engine, 'audit.list', async () => {
      let query = this.#db.selectFrom('bulwark_audit').selectAll();
      if (opts.target !== undefined) query = query.where('target', '=', opts.target);
      if (opts.beforeId !== undefined) query = query.where('id', '<', opts.beforeId);
      const rows = await query
        .orderBy('id', 'desc')
        .limit(opts.limit ?? DEFAULT_AUDIT_LIMIT)
        .execute();
      return rows.map(toRecord);
    });
  }
}

function toRecord(row: AuditRow): AuditRecord {
  return {
    id: Number(row.id),
    at: Number(row.at),
    actor: row.actor,
    action: row.action,
    target: row.target,
    detail: row.detail === null ? undefined : JSON.parse(row.detail),
  };
}

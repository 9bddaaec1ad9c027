import type { Insertable, Kysely, Selectable } from 'kysely';
import { pruneAudit, DEFAULT_AUDIT_RETENTION } from './audit-retention.js';
import { AuditTally, type TallyEntry, type TallyRow } from './audit-tally.js';
import { guard } from './errors.js';
import { serialise } from './kv.js';
import type { AuditLog, AuditRecord, AuditRetention, StoreEngine, StoreTables } from './types.js';

type AuditRow = Selectable<StoreTables['bulwark_audit']>;

/** Records returned by `list()` when no `limit` is given. */
export const DEFAULT_AUDIT_LIMIT = 100;

/** Keys {@link SqlAuditLog.tally} tracks between two flushes (default); more fold into one row. */
export const DEFAULT_TALLY_KEYS = 1_000;

/** Rows per INSERT statement when writing summaries (6 values each, far below SQLite's limit). */
const INSERT_BATCH = 500;

/** Options of {@link SqlAuditLog}. */
export interface SqlAuditLogOptions {
  db: Kysely<StoreTables>;
  /** Only names the engine in error messages; the queries are the same on both. */
  engine: StoreEngine;
  /** Clock for records appended without `at`, in ms since the epoch (default `Date.now`). */
  now?: () => number;
  /** What `prune()` keeps (defaults: {@link DEFAULT_AUDIT_RETENTION}). */
  retention?: Partial<AuditRetention>;
  /** Keys tallied between two flushes (default {@link DEFAULT_TALLY_KEYS}). */
  maxTallyKeys?: number;
}

/**
 * {@link AuditLog} over the `bulwark_audit` table, one set of queries for SQLite and PostgreSQL.
 * Ids only grow (never reused), so `beforeId` pages through history without gaps or repeats while
 * records are being appended. A resolved `append()` is committed. `tally()` counts repeated events
 * in memory and `flush()` writes them as summary rows; `prune()` applies the retention. The store
 * calls both on a timer (see `createStore`).
 *
 * Errors: `BWK_ERR_STORE_VALUE_INVALID` for a `detail` JSON cannot hold, `BWK_ERR_STORE_UNAVAILABLE`
 * for any database failure (cause attached).
 */
export class SqlAuditLog implements AuditLog {
  readonly #db: Kysely<StoreTables>;
  readonly #engine: StoreEngine;
  readonly #now: () => number;
  readonly #retention: AuditRetention;
  readonly #tally: AuditTally;
  readonly #maxUnwritten: number;
  /** Summary rows a failed flush could not write, retried first by the next one. */
  #unwritten: TallyRow[] = [];
  #flushing: Promise<void> = Promise.resolve();

  constructor(opts: SqlAuditLogOptions) {
    this.#db = opts.db;
    this.#engine = opts.engine;
    this.#now = opts.now ?? Date.now;
    this.#retention = { ...DEFAULT_AUDIT_RETENTION, ...opts.retention };
    this.#maxUnwritten = opts.maxTallyKeys ?? DEFAULT_TALLY_KEYS;
    this.#tally = new AuditTally(this.#maxUnwritten);
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

  tally(entry: TallyEntry): void {
    this.#tally.add(entry, this.#now());
  }

  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      const rows = [...this.#unwritten, ...this.#tally.take(this.#now())];
      this.#unwritten = [];
      if (rows.length === 0) return;
      try {
        await guard(this.#engine, 'audit.flush', () => this.#insert(rows));
      } catch (error) {
        // Kept for the next flush, bounded: the oldest summaries go first if the store stays down.
        this.#unwritten = rows.slice(-this.#maxUnwritten);
        throw error;
      }
    });
    return this.#flushing;
  }

  async #insert(rows: TallyRow[]): Promise<void> {
    const values: Insertable<StoreTables['bulwark_audit']>[] = rows.map((row) => ({
      at: row.at,
      actor: row.actor,
      action: row.action,
      target: row.target,
      detail: serialise('audit', row.target, row.detail),
    }));
    await this.#db.transaction().execute(async (trx) => {
      for (let i = 0; i < values.length; i += INSERT_BATCH)
        await trx
          .insertInto('bulwark_audit')
          .values(values.slice(i, i + INSERT_BATCH))
          .execute();
    });
  }

  prune(): Promise<number> {
    return guard(this.#engine, 'audit.prune', () => pruneAudit(this.#db, this.#retention, this.#now()));
  }

  /** Newest first; at most `limit` records (default {@link DEFAULT_AUDIT_LIMIT}). */
  list(
    opts: {
      limit?: number;
      target?: string;
      excludeTarget?: string;
      beforeId?: number;
      actor?: string;
      actionPrefix?: string;
    } = {},
  ): Promise<AuditRecord[]> {
    return guard(this.#engine, 'audit.list', async () => {
      let query = this.#db.selectFrom('bulwark_audit').selectAll();
      if (opts.target !== undefined) query = query.where('target', '=', opts.target);
      if (opts.actor !== undefined) query = query.where('actor', '=', opts.actor);
      if (opts.actionPrefix !== undefined) {
        // A range, not LIKE: no wildcard in the prefix can widen it, and it reads the same on both engines.
        query = query
          .where('action', '>=', opts.actionPrefix)
          .where('action', '<', `${opts.actionPrefix}\u{10FFFF}`);
      }
      if (opts.excludeTarget !== undefined) query = query.where('target', '<>', opts.excludeTarget);
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

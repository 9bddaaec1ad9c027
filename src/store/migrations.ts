import {
  Migrator,
  NO_MIGRATIONS,
  sql,
  type Kysely,
  type Migration,
  type MigrationProvider,
  type MigrationResultSet,
} from 'kysely';
import { bulwarkError, isBulwarkError } from '../errors/index.js';
import { describeError, unavailableError } from './errors.js';
import type { MigrationState, Migrations, StoreEngine, StoreTables } from './types.js';

/** Table where applied migrations are recorded (its lock table gets the `_lock` suffix). */
export const MIGRATION_TABLE = 'bulwark_migration';

/**
 * Bulwark's schema history, in code so it ships inside the package and never depends on files on
 * disk. Names sort in the order they apply; a released migration is never edited, only followed by
 * a new one. `engine` is the only place where SQL dialects differ.
 */
export function storeMigrations(engine: StoreEngine): Record<string, Migration> {
  return {
    '0001_kv': {
      async up(db) {
        // PostgreSQL's default collation depends on the server locale (en_US sorts 'B' between 'a'
        // and 'b'); "C" gives the code-point order SQLite's BINARY uses, so `list` orders the same.
        const text = engine === 'postgres' ? sql`text collate "C"` : sql`text`;
        await db.schema
          .createTable('bulwark_kv')
          .addColumn('namespace', text, (c) => c.notNull())
          .addColumn('key', text, (c) => c.notNull())
          .addColumn('value', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('bulwark_kv_pk', ['namespace', 'key'])
          .execute();
      },
      async down(db) {
        await db.schema.dropTable('bulwark_kv').execute();
      },
    },
    '0002_audit': {
      async up(db) {
        await db.schema
          .createTable('bulwark_audit')
          .addColumn('id', engine === 'postgres' ? 'bigint' : 'integer', (c) =>
            // SQLite: AUTOINCREMENT so ids are never reused after the newest row is deleted, which
            // keeps `beforeId` paging stable. PostgreSQL: an identity column does the same.
            engine === 'postgres'
              ? c.primaryKey().generatedAlwaysAsIdentity()
              : c.primaryKey().autoIncrement(),
          )
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('target', 'text', (c) => c.notNull())
          .addColumn('detail', 'text')
          .execute();
        // (target, id) serves "history of one target, newest first" without a sort.
        await db.schema
          .createIndex('bulwark_audit_target_idx')
          .on('bulwark_audit')
          .columns(['target', 'id'])
          .execute();
      },
      async down(db) {
        await db.schema.dropTable('bulwark_audit').execute();
      },
    },
    '0003_jobs': {
      async up(db) {
        const big = engine === 'postgres' ? 'bigint' : 'integer';
        await db.schema
          .createTable('bulwark_jobs')
          // seq orders jobs of equal priority and run time (FIFO) and is the handle workers use.
          .addColumn('seq', big, (c) =>
            engine === 'postgres'
              ? c.primaryKey().generatedAlwaysAsIdentity()
              : c.primaryKey().autoIncrement(),
          )
          .addColumn('queue', 'text', (c) => c.notNull())
          .addColumn('id', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('priority', 'integer', (c) => c.notNull())
          .addColumn('run_at', 'bigint', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull())
          .addColumn('max_attempts', 'integer', (c) => c.notNull())
          .addColumn('options', 'text')
          .addColumn('data', 'text', (c) => c.notNull())
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'bigint')
          .addColumn('last_error', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('started_at', 'bigint')
          .addColumn('finished_at', 'bigint')
          .addUniqueConstraint('bulwark_jobs_queue_id', ['queue', 'id'])
          .execute();
        // Claiming: the next queued jobs of one queue in priority, run time, insertion order.
        await db.schema
          .createIndex('bulwark_jobs_claim_idx')
          .on('bulwark_jobs')
          .columns(['queue', 'state', 'priority', 'run_at', 'seq'])
          .execute();
        // Recovery: active jobs whose lease has expired.
        await db.schema
          .createIndex('bulwark_jobs_lease_idx')
          .on('bulwark_jobs')
          .columns(['state', 'lease_until'])
          .execute();
        // Effect-once markers: a key recorded in the same transaction as the effect it guards.
        await db.schema
          .createTable('bulwark_effects')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .execute();
      },
      async down(db) {
        await db.schema.dropTable('bulwark_effects').execute();
        await db.schema.dropTable('bulwark_jobs').execute();
      },
    },
    '0004_errors': {
      async up(db) {
        const big = engine === 'postgres' ? 'bigint' : 'integer';
        // One row per fingerprint: the group's state and counters.
        await db.schema
          .createTable('bulwark_error_groups')
          .addColumn('fingerprint', 'text', (c) => c.primaryKey())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('message', 'text', (c) => c.notNull())
          .addColumn('culprit', 'text', (c) => c.notNull())
          .addColumn('source', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('count', big, (c) => c.notNull())
          .addColumn('first_seen', 'bigint', (c) => c.notNull())
          .addColumn('last_seen', 'bigint', (c) => c.notNull())
          .addColumn('first_release', 'text', (c) => c.notNull())
          .addColumn('last_release', 'text', (c) => c.notNull())
          .addColumn('resolved_at', 'bigint')
          .addColumn('regressions', 'integer', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('bulwark_error_groups_seen_idx')
          .on('bulwark_error_groups')
          .columns(['state', 'last_seen'])
          .execute();
        // A bounded set of sample events per group.
        await db.schema
          .createTable('bulwark_error_events')
          .addColumn('id', big, (c) =>
            engine === 'postgres'
              ? c.primaryKey().generatedAlwaysAsIdentity()
              : c.primaryKey().autoIncrement(),
          )
          .addColumn('fingerprint', 'text', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('release', 'text', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('bulwark_error_events_group_idx')
          .on('bulwark_error_events')
          .columns(['fingerprint', 'id'])
          .execute();
      },
      async down(db) {
        await db.schema.dropTable('bulwark_error_events').execute();
        await db.schema.dropTable('bulwark_error_groups').execute();
      },
    },
    '0005_metrics_history': {
      async up(db) {
        // One row per (series, resolution, bucket): enough to merge buckets when downsampling.
        await db.schema
          .createTable('bulwark_metric_points')
          .addColumn('series', 'text', (c) => c.notNull())
          .addColumn('resolution', 'integer', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('count', 'integer', (c) => c.notNull())
          .addColumn('sum', 'double precision', (c) => c.notNull())
          .addColumn('min', 'double precision', (c) => c.notNull())
          .addColumn('max', 'double precision', (c) => c.notNull())
          .addColumn('last', 'double precision', (c) => c.notNull())
          .addPrimaryKeyConstraint('bulwark_metric_points_pk', ['series', 'resolution', 'at'])
          .execute();
        // Retention and downsampling scan one resolution by time.
        await db.schema
          .createIndex('bulwark_metric_points_age_idx')
          .on('bulwark_metric_points')
          .columns(['resolution', 'at'])
          .execute();
      },
      async down(db) {
        await db.schema.dropTable('bulwark_metric_points').execute();
      },
    },
    '0006_alerts': {
      async up(db) {
        const big = engine === 'postgres' ? 'bigint' : 'integer';
        // One row per rule: its state between evaluations; `version` is the compare-and-set token.
        await db.schema
          .createTable('bulwark_alerts')
          .addColumn('rule', 'text', (c) => c.primaryKey())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('since', 'bigint', (c) => c.notNull())
          .addColumn('value', 'double precision')
          .addColumn('transitions', 'integer', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        // Notifications to send: one per transition and receiver (the idempotency key is unique).
        await db.schema
          .createTable('bulwark_alert_outbox')
          .addColumn('id', big, (c) =>
            engine === 'postgres'
              ? c.primaryKey().generatedAlwaysAsIdentity()
              : c.primaryKey().autoIncrement(),
          )
          .addColumn('key', 'text', (c) => c.notNull().unique())
          .addColumn('receiver', 'text', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull())
          .addColumn('next_at', 'bigint', (c) => c.notNull())
          .addColumn('last_error', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('sent_at', 'bigint')
          .execute();
        await db.schema
          .createIndex('bulwark_alert_outbox_due_idx')
          .on('bulwark_alert_outbox')
          .columns(['state', 'next_at'])
          .execute();
      },
      async down(db) {
        await db.schema.dropTable('bulwark_alert_outbox').execute();
        await db.schema.dropTable('bulwark_alerts').execute();
      },
    },
  };
}

/** Options of {@link KyselyMigrations}. */
export interface KyselyMigrationsOptions {
  db: Kysely<StoreTables>;
  engine: StoreEngine;
  /** PostgreSQL only: the schema of the bookkeeping tables (the store's schema). */
  schema?: string | undefined;
  /** Replaces Bulwark's own migrations; for tests of the migration machinery. */
  migrations?: Record<string, Migration> | undefined;
}

/**
 * {@link Migrations} over Kysely's `Migrator`, which serialises concurrent runs with a lock (an
 * advisory lock on PostgreSQL; a `BEGIN IMMEDIATE` transaction on SQLite, see `sqlite.ts`), so
 * processes starting together on one database apply each migration once. On PostgreSQL a run is one transaction, so a failure leaves the
 * schema as it was; SQLite DDL runs outside a transaction, so migrations before a failed one stay
 * applied. Failures reject with `BWK_ERR_STORE_MIGRATION_FAILED` naming the migration and the
 * direction; an unreachable database rejects `status()` with `BWK_ERR_STORE_UNAVAILABLE`.
 */
export class KyselyMigrations implements Migrations {
  readonly #migrator: Migrator;
  readonly #engine: StoreEngine;

  constructor(opts: KyselyMigrationsOptions) {
    const migrations = opts.migrations ?? storeMigrations(opts.engine);
    const provider: MigrationProvider = { getMigrations: () => Promise.resolve(migrations) };
    this.#engine = opts.engine;
    this.#migrator = new Migrator({
      db: opts.db,
      provider,
      migrationTableName: MIGRATION_TABLE,
      migrationLockTableName: `${MIGRATION_TABLE}_lock`,
      // Without an explicit schema Kysely looks for its table in every schema of the database and
      // would mistake another schema's bookkeeping for this one's.
      ...(opts.engine === 'postgres' && opts.schema !== undefined
        ? { migrationTableSchema: opts.schema }
        : {}),
    });
  }

  async up(): Promise<string[]> {
    return applied(await this.#migrator.migrateToLatest(), 'up');
  }

  async down(steps = 1): Promise<string[]> {
    if (!Number.isInteger(steps) || steps < 1) return [];
    const executed = (await this.#list('down')).filter((m) => m.executedAt !== undefined);
    if (executed.length === 0) return [];
    // migrateTo() reverts everything after its target in one locked run.
    const keep = executed.length - steps;
    const target = keep > 0 ? (executed[keep - 1]?.name ?? NO_MIGRATIONS) : NO_MIGRATIONS;
    return applied(await this.#migrator.migrateTo(target), 'down');
  }

  async status(): Promise<MigrationState[]> {
    const list = await this.#list('status');
    return list.map((m) => ({ name: m.name, executedAt: m.executedAt }));
  }

  async #list(purpose: 'down' | 'status'): Promise<MigrationState[]> {
    try {
      const infos = await this.#migrator.getMigrations();
      return infos.map((m) => ({ name: m.name, executedAt: m.executedAt?.getTime() }));
    } catch (error) {
      if (purpose === 'down') throw failed('(reading migration state)', 'down', error);
      throw unavailableError(this.#engine, `cannot read migration state: ${describeError(error)}`, error);
    }
  }
}

function applied(result: MigrationResultSet, direction: 'up' | 'down'): string[] {
  if (result.error !== undefined) {
    if (isBulwarkError(result.error)) throw result.error;
    // No failed entry means Kysely failed before running any migration (lock, bookkeeping table).
    const failedOne = result.results?.find((r) => r.status === 'Error');
    throw failed(failedOne?.migrationName ?? '(before any migration)', direction, result.error);
  }
  return (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

function failed(migration: string, direction: 'up' | 'down', cause: unknown): Error {
  return bulwarkError(
    'BWK_ERR_STORE_MIGRATION_FAILED',
    { migration, direction, detail: describeError(cause) },
    { cause },
  );
}

import {
  Migrator,
  sql,
  type Kysely,
  type Migration,
  type MigrationProvider,
  type MigrationResultSet,
} from 'kysely';
import { bulwarkError, isBulwarkError } from '../errors/index.js';
import { describeError, unavailableError } from './errors.js';
import type { MigrationSource, MigrationState, Migrations, StoreEngine, StoreTables } from './types.js';

/** Table where applied migrations are recorded (its lock table gets the `_lock` suffix). */
export const MIGRATION_TABLE = 'bulwark_migration';

/**
 * The store's own tables (kv and audit), in code so they ship inside the package and never depend
 * on files on disk. Every other part registers its own (`Part.migrations`, e.g. src/queue/migrations.ts);
 * names sort in the order they apply across parts. A released migration is never edited, only
 * followed by a new one. `engine` is the only place where SQL dialects differ.
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
  };
}

/** Options of {@link KyselyMigrations}. */
export interface KyselyMigrationsOptions {
  db: Kysely<StoreTables>;
  engine: StoreEngine;
  /** PostgreSQL only: the schema of the bookkeeping tables (the store's schema). */
  schema?: string | undefined;
  /**
   * The schema history (default {@link storeMigrations}); a source is read each time the migrator
   * needs the list, so a part's migration code is imported only then.
   */
  migrations?: Record<string, Migration> | MigrationSource | undefined;
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
  readonly #provider: MigrationProvider;
  readonly #db: Kysely<Record<string, { name: string }>>;
  readonly #schema: string | undefined;
  /** Applied names as last read, for the stand-ins of foreign migrations. */
  #applied: string[] = [];

  constructor(opts: KyselyMigrationsOptions) {
    const given = opts.migrations;
    this.#provider = {
      getMigrations: () =>
        typeof given === 'function'
          ? given(opts.engine)
          : Promise.resolve(given ?? storeMigrations(opts.engine)),
    };
    this.#engine = opts.engine;
    this.#db = opts.db as unknown as Kysely<Record<string, { name: string }>>;
    this.#schema = opts.engine === 'postgres' ? opts.schema : undefined;
    // What the migrator sees: the known migrations and a stand-in for each applied one this process
    // does not know (a part it does not include: the CLI on an app's database, an older release).
    // The applied names are read before each run (see #withForeign): the migrator asks for its list
    // while it holds the lock, when SQLite's one connection is taken.
    const provider: MigrationProvider = {
      getMigrations: async () => {
        const known = await this.#provider.getMigrations();
        const foreign = this.#applied.filter((name) => !(name in known));
        return { ...known, ...Object.fromEntries(foreign.map((name) => [name, foreignMigration(name)])) };
      },
    };
    this.#migrator = new Migrator({
      db: opts.db,
      provider,
      // One history for every part: a part's new migration may sort before one of another part's
      // already applied (Bulwark's next `0010_…` after an app's `1000_orders`). Each still applies
      // once, in name order among those pending.
      allowUnorderedMigrations: true,
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
    if (await this.#upToDate()) return [];
    await this.#readApplied();
    return applied(await this.#migrator.migrateToLatest(), 'up');
  }

  /** Reads the applied names for the stand-ins (none when there is no table yet or no answer). */
  async #readApplied(): Promise<void> {
    this.#applied = await this.#appliedNames().catch(() => []);
  }

  /**
   * The check of every start, in one query and without the lock: true when exactly the known
   * migrations are recorded as applied. Anything else (no table yet, one pending, one unknown, an
   * unreachable database) is left to the migrator, which takes the lock and decides or fails.
   */
  async #upToDate(): Promise<boolean> {
    try {
      const applied = new Set(await this.#appliedNames());
      return Object.keys(await this.#provider.getMigrations()).every((name) => applied.has(name));
    } catch {
      return false;
    }
  }

  /** The names recorded as applied; rejects when the table is missing or the database unreachable. */
  async #appliedNames(): Promise<string[]> {
    const db = this.#schema === undefined ? this.#db : this.#db.withSchema(this.#schema);
    return (await db.selectFrom(MIGRATION_TABLE).select('name').execute()).map((row) => row.name);
  }

  /**
   * Reverts the `steps` migrations applied last (in the order they were applied, which is not the
   * name order when a part's migration came after another's), one locked run each; stops at the
   * first that fails (a foreign one refuses), rejecting with what it names.
   */
  async down(steps = 1): Promise<string[]> {
    if (!Number.isInteger(steps) || steps < 1) return [];
    const reverted: string[] = [];
    for (let i = 0; i < steps; i++) {
      await this.#list('down');
      const names = applied(await this.#migrator.migrateDown(), 'down');
      if (names.length === 0) break;
      reverted.push(...names);
    }
    return reverted;
  }

  async status(): Promise<MigrationState[]> {
    const known = await this.#provider.getMigrations();
    const list = await this.#list('status');
    return list.map((m) => ({
      name: m.name,
      executedAt: m.executedAt,
      ...(m.name in known ? {} : { foreign: true }),
    }));
  }

  async #list(purpose: 'down' | 'status'): Promise<MigrationState[]> {
    await this.#readApplied();
    try {
      const infos = await this.#migrator.getMigrations();
      return infos.map((m) => ({ name: m.name, executedAt: m.executedAt?.getTime() }));
    } catch (error) {
      if (purpose === 'down') throw failed('(reading migration state)', 'down', error);
      throw unavailableError(this.#engine, `cannot read migration state: ${describeError(error)}`, error);
    }
  }
}

/**
 * An applied migration of a part this process does not include: it never runs up (it is applied);
 * run down, it refuses, naming why. Only the process that includes the part can revert it.
 */
function foreignMigration(name: string): Migration {
  const refuse = (direction: 'up' | 'down') => () =>
    Promise.reject(
      bulwarkError('BWK_ERR_STORE_MIGRATION_FAILED', {
        migration: name,
        direction,
        detail:
          'it belongs to a part this process does not include (revert it from the app that has the part)',
      }),
    );
  return { up: refuse('up'), down: refuse('down') };
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

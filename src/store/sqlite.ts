import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, SqliteAdapter, SqliteDialect, sql, type DialectAdapter, type LogConfig } from 'kysely';
import { describeError, unavailableError } from './errors.js';
import type { StoreTables } from './types.js';

/** Options of {@link openSqlite}. */
export interface SqliteOpenOptions {
  /** Directory of `bulwark.sqlite`; created with its parents when missing. */
  dataDir?: string | undefined;
  /** File path override (`:memory:` allowed); wins over `dataDir`. */
  sqliteFile?: string | undefined;
  /** Kysely query log, used to feed the query observer. */
  log?: LogConfig | undefined;
}

/** An opened SQLite database. */
export interface OpenedSqlite {
  db: Kysely<StoreTables>;
  /** The file actually opened (or `:memory:`). */
  file: string;
}

/** The file name used inside `dataDir`. */
export const SQLITE_FILE_NAME = 'bulwark.sqlite';

/**
 * Opens (creating if needed) the SQLite file with the pragmas Bulwark relies on: WAL journal,
 * `synchronous=NORMAL` (a committed write survives a process crash; the last commits may be lost on
 * power loss), a 5 s busy timeout against other processes on the same file, and foreign keys on.
 *
 * Nothing is left open when this rejects; failures (missing or unwritable directory, a corrupt file)
 * reject with `BWK_ERR_STORE_UNAVAILABLE` carrying the driver error as `cause`. Neither `dataDir` nor
 * `sqliteFile` given means `./data`.
 */
export function openSqlite(opts: SqliteOpenOptions): Promise<OpenedSqlite> {
  const file = opts.sqliteFile ?? path.join(opts.dataDir ?? 'data', SQLITE_FILE_NAME);
  let database: Database.Database | undefined;
  try {
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    database = new Database(file);
    // WAL lets readers in other processes (the CLI, a second instance) work while a write is open.
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = NORMAL');
    database.pragma('busy_timeout = 5000');
    database.pragma('foreign_keys = ON');
  } catch (error) {
    database?.close();
    return Promise.reject(unavailableError('sqlite', `cannot open ${file}: ${describeError(error)}`, error));
  }
  const db = new Kysely<StoreTables>({
    dialect: new LockingSqliteDialect({ database }),
    ...(opts.log === undefined ? {} : { log: opts.log }),
  });
  return Promise.resolve({ db, file });
}

/**
 * Kysely's SQLite adapter takes no migration lock (it assumes one process). Several processes on one
 * file (cluster mode, the CLI beside a running app) would then run the same migration twice. Here the
 * lock is a `BEGIN IMMEDIATE` transaction, which SQLite grants to one connection at a time (others
 * wait up to the busy timeout), so a second process sees the first one's migrations as applied.
 */
class LockingSqliteAdapter extends SqliteAdapter {
  override async acquireMigrationLock(db: Kysely<unknown>): Promise<void> {
    await sql`BEGIN IMMEDIATE`.execute(db);
  }

  override async releaseMigrationLock(db: Kysely<unknown>): Promise<void> {
    await sql`COMMIT`.execute(db);
  }
}

class LockingSqliteDialect extends SqliteDialect {
  override createAdapter(): DialectAdapter {
    return new LockingSqliteAdapter();
  }
}

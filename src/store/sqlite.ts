import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  CompiledQuery,
  Kysely,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
  sql,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  type LogConfig,
  type SqliteDatabase,
  type SqliteDialectConfig,
} from 'kysely';
import { LRUCache } from 'lru-cache';
import {
  startCheckpointer,
  type Checkpointer,
  type CheckpointerOptions,
  type StoreCheckpoint,
} from './checkpointer.js';
import { startReader, type AsideReader } from './reader.js';
import { describeError, unavailableError } from './errors.js';
import { guardedDialect } from './guarded-dialect.js';
import {
  ensurePrivateDir,
  ensurePrivateFile,
  PRIVATE_DIR_MODE,
  type PermissionWarning,
} from './permissions.js';
import type { StoreReadAside, StoreSynchronous, StoreTables } from './types.js';

/** Options of {@link openSqlite}. */
export interface SqliteOpenOptions {
  /** Directory of `bulwark.sqlite`; created (0700) with its parents when missing, tightened to 0700. */
  dataDir?: string | undefined;
  /** File path override (`:memory:` allowed); wins over `dataDir`. */
  sqliteFile?: string | undefined;
  /** Kysely query log, used to feed the query observer. */
  log?: LogConfig | undefined;
  /** Told when a permission was found too loose (default: a process warning). */
  onPermissionWarning?: PermissionWarning | undefined;
  /** `PRAGMA synchronous` (default `'normal'`); validated by the caller. */
  synchronous?: StoreSynchronous | undefined;
  /** Who checkpoints the WAL (default `'background'`: a worker thread); validated by the caller. */
  checkpoint?: StoreCheckpoint | undefined;
  /** Tuning of the background checkpoints (tests). */
  checkpointer?: CheckpointerOptions | undefined;
  /** Where whole-table reads run (default `'worker'`); validated by the caller. */
  readAside?: StoreReadAside | undefined;
  onReadAsideError?: ((error: Error) => void) | undefined;
}

/** An opened SQLite database. */
export interface OpenedSqlite {
  db: Kysely<StoreTables>;
  /** The file actually opened (or `:memory:`). */
  file: string;
  /** The WAL's background checkpoints (none in memory or with `checkpoint: 'inline'`): stop before closing `db`. */
  checkpointer: Checkpointer | undefined;
  /** Reads that walk many rows, on a worker thread (none in memory): stop before closing `db`. */
  reader: AsideReader | undefined;
}

/** The file name used inside `dataDir`. */
export const SQLITE_FILE_NAME = 'bulwark.sqlite';

/**
 * Opens (creating if needed) the SQLite file with the pragmas Bulwark relies on: WAL journal,
 * `synchronous=NORMAL` (a committed write survives a process crash; the last commits may be lost on
 * power loss) or, with `synchronous: 'full'`, `FULL` (the WAL is fsynced at every commit: it survives
 * power loss too), a 5 s busy timeout against other processes on the same file, and foreign keys on.
 * The WAL is checkpointed on a worker thread once it has grown past 1 MiB (see `checkpointer.ts`),
 * unless `checkpoint: 'inline'`.
 *
 * The file, its `-wal` and `-shm` are 0600 and the data directory 0700 whatever the umask. Nothing is left open when this rejects; failures (missing or unwritable directory, a corrupt file)
 * reject with `BWK_ERR_STORE_UNAVAILABLE` carrying the driver error as `cause`. Neither `dataDir` nor
 * `sqliteFile` given means `./data`.
 */
export function openSqlite(opts: SqliteOpenOptions): Promise<OpenedSqlite> {
  const file = opts.sqliteFile ?? path.join(opts.dataDir ?? 'data', SQLITE_FILE_NAME);
  let database: Database.Database | undefined;
  let checkpointer: Checkpointer | undefined;
  try {
    if (file !== ':memory:' && file !== '') makePrivate(file, opts);
    database = new Database(file);
    // WAL lets readers in other processes (the CLI, a second instance) work while a write is open.
    database.pragma('journal_mode = WAL');
    database.pragma(opts.synchronous === 'full' ? 'synchronous = FULL' : 'synchronous = NORMAL');
    database.pragma('busy_timeout = 5000');
    database.pragma('foreign_keys = ON');
    checkpointer =
      opts.checkpoint === 'inline' || file === ':memory:' || file === ''
        ? undefined
        : startCheckpointer(database, file, opts.checkpointer);
  } catch (error) {
    database?.close();
    return Promise.reject(unavailableError('sqlite', `cannot open ${file}: ${describeError(error)}`, error));
  }
  const db = new Kysely<StoreTables>({
    dialect: guardedDialect('sqlite', new LockingSqliteDialect({ database: reusingStatements(database) })),
    ...(opts.log === undefined ? {} : { log: opts.log }),
  });
  const reader =
    opts.readAside === 'inline' || file === ':memory:' || file === ''
      ? undefined
      : startReader(file, opts.onReadAsideError);
  return Promise.resolve({ db, file, checkpointer, reader });
}

/** How many prepared statements are kept for reuse (queries with a varying `IN (…)` list differ). */
const STATEMENT_CACHE_SIZE = 500;

/**
 * `database` with its prepared statements reused by SQL text: Kysely's SQLite driver prepares every
 * query anew, and better-sqlite3 compiles the SQL at each prepare (~8 µs for a one-row select, more
 * for a write). A statement is never used by two queries at once: Kysely runs one query at a time on
 * its one connection, a streamed one holding it until the stream ends. SQLite re-prepares a
 * statement by itself after a schema change.
 */
function reusingStatements(database: Database.Database): SqliteDatabase {
  const statements = new LRUCache<string, Database.Statement>({ max: STATEMENT_CACHE_SIZE });
  return {
    close: () => database.close(),
    prepare(text: string) {
      let statement = statements.get(text);
      if (statement === undefined) {
        statement = database.prepare(text);
        statements.set(text, statement);
      }
      return statement;
    },
  };
}

/**
 * Keeps the database private to its owner: the data directory 0700 (an existing looser one is
 * tightened, see `ensurePrivateDir`; an explicit `sqliteFile`'s directory is only created, never
 * changed: it may be shared), the file created 0600 before SQLite opens it, because SQLite creates
 * `-wal` and `-shm` with the mode of the database file; leftovers from an older, looser run are
 * tightened too.
 */
function makePrivate(file: string, opts: SqliteOpenOptions): void {
  const warn = opts.onPermissionWarning;
  if (opts.sqliteFile === undefined) ensurePrivateDir(path.dirname(file), warn);
  else mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: PRIVATE_DIR_MODE });
  ensurePrivateFile(file, warn);
  for (const suffix of ['-wal', '-shm', '-journal'])
    ensurePrivateFile(file + suffix, warn, { create: false });
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

/**
 * Every transaction begins IMMEDIATE (takes the write lock at its start). A plain BEGIN takes it at
 * the first write; when another process (an instance of a cluster, the CLI) has written since the
 * transaction's first read, its snapshot is stale and SQLite refuses the write at once with
 * SQLITE_BUSY, whatever the busy timeout, so a read-then-write transaction fails under concurrency.
 * Begun IMMEDIATE, the other writer waits its busy timeout instead. The store's transactions all
 * write, so nothing is serialised that was not already.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class LockingSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createAdapter(): DialectAdapter {
    return new LockingSqliteAdapter();
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

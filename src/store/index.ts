import { performance } from 'node:perf_hooks';
import { sql, type Kysely, type LogEvent } from 'kysely';
import { SqlAuditLog } from './audit.js';
import type { Checkouts } from './checkouts.js';
import type { Checkpointer } from './checkpointer.js';
import type { AsideReader } from './reader.js';
import { bulwarkError } from '../errors/index.js';
import { guard } from './errors.js';
import { queryOperation, unguarded } from './guarded-dialect.js';
import { SqlKvRepository } from './kv.js';
import { KyselyMigrations } from './migrations.js';
import { openSqlite } from './sqlite.js';
import type {
  AsideQuery,
  KvRepository,
  Migrations,
  QueryObserver,
  Store,
  StoreEngine,
  StoreOptions,
  StoreTables,
} from './types.js';

export type * from './types.js';
export { AUDIT_REFUSED_TARGET, DEFAULT_AUDIT_RETENTION } from './audit-retention.js';
export { MIGRATION_TABLE, storeMigrations } from './migrations.js';
export { SQLITE_FILE_NAME } from './sqlite.js';

/**
 * Opens the store: PostgreSQL when `databaseUrl` is set, otherwise the SQLite file in `dataDir`
 * (or `sqliteFile`). Checks that the database answers and, unless `migrate: false`, applies the
 * pending migrations of `migrations` (default the store's own tables) before resolving, under the
 * migration lock: processes opening one database at once apply each migration once.
 *
 * Rejects with `BWK_ERR_STORE_UNAVAILABLE` when the database cannot be opened or reached (an
 * unreachable PostgreSQL fails within the 5 s connect timeout, it does not hang; a query later
 * fails after `queryTimeoutMs`) and with
 * `BWK_ERR_STORE_MIGRATION_FAILED` when a migration fails; in both cases every connection it opened
 * is closed again. `onQuery` sees every query, migrations included.
 */
export async function createStore(opts: StoreOptions): Promise<Store> {
  checkOneOf('synchronous', opts.synchronous, ['normal', 'full']);
  checkOneOf('checkpoint', opts.checkpoint, ['background', 'inline']);
  checkOneOf('readAside', opts.readAside, ['worker', 'inline']);
  const engine: StoreEngine = opts.databaseUrl === undefined ? 'sqlite' : 'postgres';
  const log = opts.onQuery === undefined ? undefined : queryLogger(engine, opts.onQuery);
  const opened =
    opts.databaseUrl === undefined
      ? {
          ...(await openSqlite({
            dataDir: opts.dataDir,
            sqliteFile: opts.sqliteFile,
            log,
            onPermissionWarning: opts.onPermissionWarning,
            synchronous: opts.synchronous,
            checkpoint: opts.checkpoint,
            checkpointer: opts.checkpointer,
            readAside: opts.readAside,
            onReadAsideError: opts.onReadAsideError,
          })),
          schema: undefined,
          checkouts: undefined,
        }
      : // Loaded only with DATABASE_URL: an SQLite service never needs the pg driver.
        await (
          await import('./postgres.js')
        ).openPostgres({
          url: opts.databaseUrl,
          schema: opts.schema,
          log,
          queryTimeoutMs: opts.queryTimeoutMs,
        });

  const store = new KyselyStore(engine, opened.db, opened.schema, opts.audit, opts.migrations);
  store.checkouts = opened.checkouts;
  store.checkpointer = 'checkpointer' in opened ? opened.checkpointer : undefined;
  store.reader = 'reader' in opened ? opened.reader : undefined;
  store.queryLog = log;
  try {
    // Besides proving the database answers, the first query initialises Kysely's driver; a driver
    // never used is skipped by destroy(), which would leave the SQLite file handle open on close().
    await store.ping();
    if (opts.migrate !== false) await store.migrations.up();
  } catch (error) {
    await store.close();
    throw error;
  }
  store.startUpkeep();
  return store;
}

/** Throws `BWK_ERR_STORE_OPTIONS` naming `field` when `value` is set and not one of `allowed`. */
function checkOneOf(field: string, value: unknown, allowed: readonly string[]): void {
  if (value === undefined || allowed.includes(value as string)) return;
  throw bulwarkError('BWK_ERR_STORE_OPTIONS', {
    field,
    problem: `must be ${allowed.map((one) => `'${one}'`).join(' or ')}, got ${JSON.stringify(value) ?? typeof value}`,
  });
}

/** Default period of the audit retention, ms. */
const PRUNE_EVERY_MS = 600_000;
/** Default period at which tallied audit summaries are written, ms. */
const FLUSH_EVERY_MS = 60_000;

/** {@link Store} over one Kysely instance; the engine only changes how it was opened. */
class KyselyStore implements Store {
  readonly engine: StoreEngine;
  readonly db: Kysely<StoreTables>;
  readonly kv: KvRepository;
  readonly audit: SqlAuditLog;
  readonly migrations: Migrations;
  checkouts: Checkouts | undefined;
  /** SQLite: the WAL's background checkpoints, stopped before the connection closes. */
  checkpointer: Checkpointer | undefined;
  /** SQLite in a file: the worker of {@link readAside}, stopped before the connection closes. */
  reader: AsideReader | undefined;
  /** The query observer's feed (Kysely's log), told of the reads the worker answers. */
  queryLog: ((event: LogEvent) => void) | undefined;
  readonly #upkeep: StoreOptions['audit'];
  readonly #timers: NodeJS.Timeout[] = [];
  #pruning: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> | undefined;

  constructor(
    engine: StoreEngine,
    db: Kysely<StoreTables>,
    schema: string | undefined,
    upkeep: StoreOptions['audit'],
    migrations: StoreOptions['migrations'],
  ) {
    this.engine = engine;
    this.db = db;
    this.#upkeep = upkeep;
    this.kv = new SqlKvRepository({ db, engine });
    this.audit = new SqlAuditLog({
      db,
      engine,
      ...(upkeep === false || upkeep === undefined ? {} : pickAudit(upkeep)),
    });
    this.migrations = untranslated(new KyselyMigrations({ db, engine, schema, migrations }));
  }

  /**
   * Starts the audit log's upkeep (unless `audit: false`): tallied summaries written every
   * `flushEveryMs`, the retention every `pruneEveryMs`. Timers are unref'd: they never keep a
   * process alive. A failed run is retried by the next one (the store's health check reports the
   * store itself).
   */
  startUpkeep(): void {
    if (this.#upkeep === false) return;
    const every = (ms: number, run: () => Promise<unknown>) => {
      const timer = setInterval(() => void run().catch(() => undefined), ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(this.#upkeep?.flushEveryMs ?? FLUSH_EVERY_MS, () => this.audit.flush());
    every(this.#upkeep?.pruneEveryMs ?? PRUNE_EVERY_MS, () => {
      // One run at a time: a long run is not overlapped by the next tick.
      this.#pruning = this.#pruning.then(() => this.audit.prune()).catch(() => undefined);
      return this.#pruning;
    });
  }

  ping(): Promise<number> {
    return guard(this.engine, 'ping', async () => {
      const started = performance.now();
      await sql`select 1`.execute(this.db);
      return performance.now() - started;
    });
  }

  readAside<R>(query: AsideQuery<R>): Promise<R[]> {
    const reader = this.reader;
    if (reader === undefined) return query.execute();
    // Kysely's log sees the reads `here` runs; the worker's are told to it the same way.
    const compiled = query.compile();
    const started = performance.now();
    let onWorker = true;
    const told = (event: { level: 'query' } | { level: 'error'; error: unknown }) => {
      if (onWorker)
        this.queryLog?.({ ...event, query: compiled, queryDurationMillis: performance.now() - started });
    };
    const here = () => {
      onWorker = false;
      return query.execute();
    };
    return reader.all(compiled, here).then(
      (rows) => (told({ level: 'query' }), rows),
      (error: unknown) => {
        told({ level: 'error', error });
        throw error;
      },
    );
  }

  close(): Promise<void> {
    // Memoised: a second close (plugin onClose after a failed start, say) waits for the first.
    this.#closing ??= (async () => {
      for (const timer of this.#timers.splice(0)) clearInterval(timer);
      // Tallied summaries are written before the connection goes; a failure must not stop the close.
      await this.audit.flush().catch(() => undefined);
      await this.#pruning;
      // The worker's connection goes first: the app's, then the last, checkpoints and removes the WAL.
      await this.reader?.stop();
      await this.checkpointer?.stop();
      await this.db.destroy();
    })();
    return this.#closing;
  }
}

function pickAudit(upkeep: Exclude<StoreOptions['audit'], false | undefined>) {
  return {
    ...(upkeep.retention === undefined ? {} : { retention: upkeep.retention }),
    ...(upkeep.maxTallyKeys === undefined ? {} : { maxTallyKeys: upkeep.maxTallyKeys }),
  };
}

/**
 * Migrations see driver failures as the driver threw them: they report a failed migration as
 * `BWK_ERR_STORE_MIGRATION_FAILED` naming it, not as the store being unavailable.
 */
function untranslated(migrations: Migrations): Migrations {
  return {
    up: () => unguarded(() => migrations.up()),
    down: (steps) => unguarded(() => migrations.down(steps)),
    status: () => unguarded(() => migrations.status()),
  };
}

/** Adapts Kysely's query log to a {@link QueryObserver}; an observer that throws is ignored. */
function queryLogger(engine: StoreEngine, observer: QueryObserver): (event: LogEvent) => void {
  return (event) => {
    try {
      observer({
        engine,
        operation: queryOperation(event.query.query),
        durationMs: event.queryDurationMillis,
        failed: event.level === 'error',
      });
    } catch {
      // Metrics must never fail a query; the observer contract already says it must not throw.
    }
  };
}

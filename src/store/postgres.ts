import { Kysely, PostgresDialect, sql, type LogConfig } from 'kysely';
import pg from 'pg';
import { describeError, unavailableError } from './errors.js';
import { guardedDialect, unguarded } from './guarded-dialect.js';
import type { StoreTables } from './types.js';

/** Options of {@link openPostgres}. */
export interface PostgresOpenOptions {
  /** Connection URL, e.g. `postgres://user:pass@host:5432/db`. */
  url: string;
  /**
   * Schema holding Bulwark's tables; created when missing and put first on every connection's
   * `search_path`. Lower-case letters, digits and `_` only. Unset = the server's current schema.
   */
  schema?: string | undefined;
  /** Kysely query log, used to feed the query observer. */
  log?: LogConfig | undefined;
}

/** An opened, reachable PostgreSQL database. */
export interface OpenedPostgres {
  db: Kysely<StoreTables>;
  /** The schema the tables (and the migration bookkeeping) live in. */
  schema: string;
}

/** Connections per store; Bulwark's queries are short, so a small pool covers a busy instance. */
const POOL_MAX = 10;
/** Upper bound of one connection attempt, so an unreachable server fails fast instead of hanging. */
const CONNECT_TIMEOUT_MS = 5_000;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

// BIGINT (int8) arrives as a string by default because it may exceed 2^53; Bulwark only keeps
// millisecond timestamps and row ids in it, which stay far below that. Scoped to this pool rather
// than set globally on `pg.types`, so other pg users in the process keep their parsers.
const INT8_OID = 20;
const typeParsers = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * Connects to PostgreSQL through a `pg.Pool` (at most 10 connections, 5 s connect timeout), checks
 * that the server answers, and prepares `schema` (created if missing; first on the `search_path` of
 * every connection, so unqualified table names resolve there).
 *
 * Rejects with `BWK_ERR_STORE_UNAVAILABLE` (driver error as `cause`) when the server cannot be
 * reached or the schema cannot be prepared; the pool is closed before rejecting. The URL's password
 * never appears in messages.
 */
export async function openPostgres(opts: PostgresOpenOptions): Promise<OpenedPostgres> {
  const target = redact(opts.url);
  if (opts.schema !== undefined && !SCHEMA_NAME.test(opts.schema)) {
    throw unavailableError(
      'postgres',
      `schema name "${opts.schema}" is invalid: use lower-case letters, digits and _`,
    );
  }
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: POOL_MAX,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    types: typeParsers,
    // A startup parameter rather than a `SET` after connecting: it applies before the first query
    // of every pooled connection, with no window in which a query could see another schema.
    ...(opts.schema === undefined ? {} : { options: `-c search_path=${opts.schema}` }),
  });
  // A connection that dies (server crash, restart, network cut) emits 'error': on the pool while
  // idle, on the client itself while checked out. Either one unhandled would crash the process,
  // and pg does not listen on checked-out clients. The query in flight is rejected anyway and the
  // pool discards the connection, so the listeners have nothing left to do.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  const db = new Kysely<StoreTables>({
    dialect: guardedDialect('postgres', new PostgresDialect({ pool })),
    ...(opts.log === undefined ? {} : { log: opts.log }),
  });

  try {
    // Untranslated: the error below names the target and the driver's own reason.
    return await unguarded(async () => {
      await sql`select 1`.execute(db);
      const schema = opts.schema ?? (await currentSchema(db));
      if (opts.schema !== undefined) await ensureSchema(db, opts.schema);
      return { db, schema };
    });
  } catch (error) {
    await db.destroy().catch(() => undefined);
    throw unavailableError('postgres', `${target}: ${describeError(error)}`, error);
  }
}

async function currentSchema(db: Kysely<StoreTables>): Promise<string> {
  const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
  const schema = rows[0]?.schema;
  // current_schema() is null when no schema on the search_path exists; tables would have nowhere to go.
  if (schema === null || schema === undefined) throw new Error('no schema on the search_path exists');
  return schema;
}

async function ensureSchema(db: Kysely<StoreTables>, schema: string): Promise<void> {
  try {
    await db.schema.createSchema(schema).ifNotExists().execute();
  } catch (error) {
    // Two stores creating the same schema at once can both pass the IF NOT EXISTS check; the loser
    // gets a unique violation although the schema now exists, which is all it wanted.
    const { rows } = await sql`select 1 from pg_namespace where nspname = ${schema}`.execute(db);
    if (rows.length === 0) throw error;
  }
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the configured URL';
  }
}

import {
  Kysely,
  PostgresDialect,
  sql,
  type LogConfig,
  type PostgresCursor,
  type PostgresPool,
  type PostgresPoolClient,
  type PostgresQueryResult,
} from 'kysely';
import pg from 'pg';
import { isBulwarkError } from '../errors/index.js';
import { CheckoutTracker } from './checkouts.js';
import { describeError, unavailableError } from './errors.js';
import { guardedDialect, isUnguarded } from './guarded-dialect.js';
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
  /**
   * Deadline of one query, ms (default {@link DEFAULT_QUERY_TIMEOUT_MS}). A query with no answer by
   * then (a frozen server, a network that drops everything) rejects, which the store's guard makes
   * `BWK_ERR_STORE_UNAVAILABLE`, and the connection it was on is closed, not returned to the pool.
   * The migrations (queries run by `unguarded()` code) have no deadline.
   */
  queryTimeoutMs?: number | undefined;
}

/** An opened, reachable PostgreSQL database. */
export interface OpenedPostgres {
  db: Kysely<StoreTables>;
  /** The schema the tables (and the migration bookkeeping) live in. */
  schema: string;
  /** The pool's connections checked out now, with the stacks that took them. */
  checkouts: CheckoutTracker;
}

/** Connections per store; Bulwark's queries are short, so a small pool covers a busy instance. */
const POOL_MAX = 10;
/**
 * Upper bound of one connection attempt, and of the wait for a free pooled connection, so an
 * unreachable server fails fast instead of hanging.
 */
const CONNECT_TIMEOUT_MS = 5_000;
/**
 * Default deadline of one query, ms. Bulwark's queries take milliseconds; the longest legitimate ones
 * (metrics compaction, a retention delete after a long stop, a weekly report) take seconds on large
 * tables: downsampling 2 M minute buckets (200 series, 7 days) from scratch took 2.3 s on a 2-core
 * development machine. A compaction cut by the deadline would start over at every pass and never
 * finish, so the bound leaves such work ample room.
 */
export const DEFAULT_QUERY_TIMEOUT_MS = 30_000;
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
 * Connects to PostgreSQL through a `pg.Pool` (at most 10 connections, 5 s connect timeout, each query
 * bounded by `queryTimeoutMs`), checks that the server answers, and prepares `schema` (created if
 * missing; first on the `search_path` of every connection, so unqualified table names resolve there).
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
  const timeoutMs = opts.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  const checkouts = new CheckoutTracker();
  const db = new Kysely<StoreTables>({
    dialect: guardedDialect(
      'postgres',
      new PostgresDialect({ pool: deadlinePool(pool, timeoutMs, checkouts) }),
    ),
    ...(opts.log === undefined ? {} : { log: opts.log }),
  });

  try {
    await sql`select 1`.execute(db);
    const schema = opts.schema ?? (await currentSchema(db));
    if (opts.schema !== undefined) await ensureSchema(db, opts.schema);
    return { db, schema, checkouts };
  } catch (error) {
    await db.destroy().catch(() => undefined);
    // The guard's error names the statement; this one names the target and the driver's own reason.
    const reason = isBulwarkError(error) ? error.cause : error;
    throw unavailableError('postgres', `${target}: ${describeError(reason)}`, reason);
  }
}

/** The error node-postgres rejects a query with when its `query_timeout` passes (pg's client.js). */
const PG_QUERY_TIMEOUT = 'Query read timeout';

/**
 * `pool` as Kysely sees it, each query outside `unguarded()` code bounded by node-postgres's
 * per-query `query_timeout`. pg rejects a late query but keeps its connection as it is, the query
 * still waiting for an answer: back in the pool, the connection would make every later query on it
 * wait behind the lost one. So a connection whose query timed out fails its next queries at once
 * (a transaction's rollback) and is released with the error, which makes pg-pool close it (pg
 * destroys the socket of a client with a query in flight) and open a fresh one when needed.
 */
function deadlinePool(pool: pg.Pool, timeoutMs: number, checkouts: CheckoutTracker): PostgresPool {
  // One wrapper per pg client: Kysely keeps its connection objects by client identity.
  const clients = new WeakMap<pg.PoolClient, DeadlineClient>();
  return {
    async connect() {
      const client = await pool.connect();
      let wrapped = clients.get(client);
      if (wrapped === undefined) {
        wrapped = new DeadlineClient(client, timeoutMs, checkouts);
        clients.set(client, wrapped);
      }
      checkouts.taken(client);
      return wrapped;
    },
    end: () => pool.end(),
  };
}

class DeadlineClient implements PostgresPoolClient {
  readonly #client: pg.PoolClient;
  readonly #timeoutMs: number;
  readonly #checkouts: CheckoutTracker;
  /** Set once a query timed out: the connection is unusable and goes when released. */
  #lost: Error | undefined;

  constructor(client: pg.PoolClient, timeoutMs: number, checkouts: CheckoutTracker) {
    this.#client = client;
    this.#timeoutMs = timeoutMs;
    this.#checkouts = checkouts;
  }

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(
    text: string | PostgresCursor<R>,
    parameters: ReadonlyArray<unknown> = [],
  ): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    // Streaming needs a cursor class in the dialect's config; Bulwark configures none.
    if (typeof text !== 'string') throw new Error('cursors are not supported');
    if (this.#lost !== undefined) {
      return Promise.reject(new Error(`connection discarded: ${this.#lost.message}`, { cause: this.#lost }));
    }
    this.#checkouts.queried(this.#client, text);
    const config = isUnguarded()
      ? { text, values: [...parameters] }
      : { text, values: [...parameters], query_timeout: this.#timeoutMs };
    return this.#client.query(config).then(
      (result) => result as unknown as PostgresQueryResult<R>,
      (error: unknown) => {
        if (error instanceof Error && error.message === PG_QUERY_TIMEOUT) {
          this.#lost = new Error(`no answer within ${this.#timeoutMs} ms (query timeout)`, { cause: error });
          throw this.#lost;
        }
        throw error;
      },
    );
  }

  release(): void {
    this.#checkouts.released(this.#client);
    this.#client.release(this.#lost);
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

import { AsyncLocalStorage } from 'node:async_hooks';
import {
  AliasNode,
  TableNode,
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type OperationNode,
  type QueryCompiler,
  type QueryResult,
  type RootOperationNode,
  type TransactionSettings,
} from 'kysely';
import { guard } from './errors.js';
import type { StoreEngine } from './types.js';

type Runner = <T>(operation: string, run: () => Promise<T>) => Promise<T>;
type Compile = QueryCompiler['compileQuery'];

/** Set while {@link unguarded} code runs: its driver failures pass through untranslated. */
const passThrough = new AsyncLocalStorage<true>();
/** Unguarded runs in progress (the storage stays enabled until the last one ends). */
let active = 0;

/**
 * Runs `run` with driver failures passing through as the driver threw them, for the code that maps
 * them itself: the migrations (`BWK_ERR_STORE_MIGRATION_FAILED` naming the migration). Queries that
 * `run` starts are not translated, including those of timers it creates while it runs; nothing else
 * is affected.
 * On PostgreSQL they also have no query deadline (see {@link isUnguarded}).
 */
export async function unguarded<T>(run: () => Promise<T>): Promise<T> {
  active += 1;
  try {
    return await passThrough.run(true, run);
  } finally {
    active -= 1;
    // On Node 20 an enabled AsyncLocalStorage keeps promise hooks on for every promise in the
    // process (a cost on every request, docs/benchmarks.md#where-the-time-goes): off again once no
    // unguarded code runs. A timer such code left behind runs guarded from then on.
    if (active === 0) passThrough.disable();
  }
}

/**
 * Whether the code running now is inside {@link unguarded}. PostgreSQL gives its queries no deadline:
 * a migration may legitimately run for minutes (DDL on a large table, waiting for another process's
 * migration to release the migration lock).
 */
export function isUnguarded(): boolean {
  return passThrough.getStore() === true;
}

/**
 * The store's one translation of driver failures: wraps `dialect` so that every failure of its driver
 * (acquiring a connection, a query, begin, commit, rollback, a savepoint) rejects with
 * `BWK_ERR_STORE_UNAVAILABLE` (the driver error as `cause`, see `guard()`), whatever code ran the
 * query: the store's repositories, or a subsystem's own queries on `Store.db` (the error tracker,
 * the metrics history, alerting). Over HTTP that is a 503 with its code, never an uncoded 500.
 * Successful queries are untouched; catalogue errors pass through unchanged.
 */
export function guardedDialect(engine: StoreEngine, dialect: Dialect): Dialect {
  return {
    createDriver: () => new GuardedDriver(engine, dialect.createDriver()),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => dialect.createIntrospector(db),
  };
}

const VERBS: Readonly<Record<string, string>> = {
  SelectQueryNode: 'select',
  InsertQueryNode: 'insert',
  UpdateQueryNode: 'update',
  DeleteQueryNode: 'delete',
};

/** `select`, `insert`, `update`, `delete`, or `other` (raw SQL, DDL): the query observer's operation. */
export function queryOperation(node: RootOperationNode): string {
  return VERBS[node.kind] ?? 'other';
}

/**
 * Translates the failures of acquiring a connection and of every query on one; transactions and
 * savepoints are statements on the (guarded) connection, so they are translated there.
 */
class GuardedDriver implements Driver {
  readonly #driver: Driver;
  readonly #run: Runner;
  /** One wrapper per driver connection: Kysely recognises connections it has seen by identity. */
  readonly #connections = new WeakMap<DatabaseConnection, GuardedConnection>();

  constructor(engine: StoreEngine, driver: Driver) {
    this.#driver = driver;
    this.#run = (operation, run) => (isUnguarded() ? run() : guard(engine, operation, run));
  }

  init(): Promise<void> {
    return this.#run('connect', () => this.#driver.init());
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const inner = await this.#run('connect', () => this.#driver.acquireConnection());
    let connection = this.#connections.get(inner);
    if (connection === undefined) {
      connection = new GuardedConnection(inner, this.#run);
      this.#connections.set(inner, connection);
    }
    return connection;
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.#driver.beginTransaction(connection, settings);
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#driver.commitTransaction(connection);
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#driver.rollbackTransaction(connection);
  }

  savepoint(connection: DatabaseConnection, name: string, compile: Compile): Promise<void> {
    return this.#driver.savepoint?.(connection, name, compile) ?? unsupported();
  }

  rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: Compile): Promise<void> {
    return this.#driver.rollbackToSavepoint?.(connection, name, compile) ?? unsupported();
  }

  releaseSavepoint(connection: DatabaseConnection, name: string, compile: Compile): Promise<void> {
    return this.#driver.releaseSavepoint?.(connection, name, compile) ?? unsupported();
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    // The driver's own connection object: pg's release goes through a private symbol on it.
    return this.#driver.releaseConnection(
      connection instanceof GuardedConnection ? connection.inner : connection,
    );
  }

  destroy(): Promise<void> {
    return this.#driver.destroy();
  }
}

class GuardedConnection implements DatabaseConnection {
  readonly inner: DatabaseConnection;
  readonly #run: Runner;

  constructor(inner: DatabaseConnection, run: Runner) {
    this.inner = inner;
    this.#run = run;
  }

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return this.#run(describe(query), () => this.inner.executeQuery<R>(query));
  }

  async *streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    const rows = this.inner.streamQuery<R>(query, chunkSize);
    const operation = describe(query);
    let done = false;
    try {
      for (;;) {
        const next = await this.#run(operation, () => rows.next());
        if (next.done === true) break;
        yield next.value;
      }
      done = true;
    } finally {
      // A consumer that stops early must still let the driver close its cursor.
      if (!done) await rows.return?.();
    }
  }
}

function unsupported(): Promise<never> {
  return Promise.reject(new Error('savepoints are not supported by this driver'));
}

/** What failed, for the error's detail: `select bulwark_alerts`, `insert bulwark_kv`, `begin statement`. */
function describe(query: CompiledQuery): string {
  const node = query.query;
  const verb = VERBS[node.kind];
  if (verb === undefined) {
    // Raw SQL and DDL: the statement's first keyword.
    const keyword = /^\s*([a-z]+)/i.exec(query.sql)?.[1]?.toLowerCase();
    return keyword === undefined ? 'statement' : `${keyword} statement`;
  }
  const target =
    node.kind === 'InsertQueryNode'
      ? node.into
      : node.kind === 'UpdateQueryNode'
        ? node.table
        : node.kind === 'SelectQueryNode' || node.kind === 'DeleteQueryNode'
          ? node.from?.froms[0]
          : undefined;
  const table = tableOf(target);
  return table === undefined ? verb : `${verb} ${table}`;
}

function tableOf(node: OperationNode | undefined): string | undefined {
  if (node === undefined) return undefined;
  if (TableNode.is(node)) return node.table.identifier.name;
  if (AliasNode.is(node)) return tableOf(node.node);
  return undefined;
}

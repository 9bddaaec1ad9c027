import type { CompiledQuery, Generated, Kysely, Migration } from 'kysely';
import type { TallyEntry } from './audit-tally.js';
import type { Checkouts } from './checkouts.js';
import type { CheckpointerOptions, StoreCheckpoint } from './checkpointer.js';

export type { TallyEntry } from './audit-tally.js';

/** Which engine a store runs on. */
export type StoreEngine = 'sqlite' | 'postgres';

/**
 * Tables of the Bulwark store. Timestamps are integer milliseconds since the epoch on both engines;
 * JSON values are stored as text so the same query code runs on SQLite and PostgreSQL.
 */
export interface StoreTables {
  bulwark_kv: {
    namespace: string;
    key: string;
    /** JSON text. */
    value: string;
    /** Starts at 1, +1 on every write; the compare-and-set token. */
    version: number;
    updated_at: number;
  };
  bulwark_audit: {
    id: Generated<number>;
    at: number;
    actor: string;
    action: string;
    target: string;
    /** JSON text or null. */
    detail: string | null;
  };
  bulwark_jobs: {
    seq: Generated<number>;
    queue: string;
    id: string;
    /** 'queued' | 'active' | 'dead'; completed jobs are deleted. */
    state: string;
    priority: number;
    run_at: number;
    /** Attempts started so far. */
    attempts: number;
    max_attempts: number;
    /** JSON text of the retry/timeout options, or null for the defaults. */
    options: string | null;
    /** JSON text. */
    data: string;
    lease_owner: string | null;
    lease_until: number | null;
    last_error: string | null;
    created_at: number;
    started_at: number | null;
    finished_at: number | null;
  };
  bulwark_effects: {
    key: string;
    at: number;
  };
  bulwark_error_groups: {
    fingerprint: string;
    /** The error's type (constructor name, or the browser's). */
    type: string;
    /** The message template (numbers, ids, quoted values replaced). */
    message: string;
    /** The top in-app frame (`function (file:line)`), or '' when none. */
    culprit: string;
    /** 'server' | 'browser'. */
    source: string;
    /** 'open' | 'resolved' | 'ignored'. */
    state: string;
    count: number;
    first_seen: number;
    last_seen: number;
    first_release: string;
    last_release: string;
    resolved_at: number | null;
    /** Times a resolved group came back. */
    regressions: number;
  };
  bulwark_error_events: {
    id: Generated<number>;
    fingerprint: string;
    at: number;
    release: string;
    /** JSON text of the sample event (message, stack, request and user context). */
    data: string;
  };
  bulwark_alerts: {
    rule: string;
    /** 'inactive' | 'pending' | 'firing' | 'nodata' | 'error'. */
    state: string;
    since: number;
    value: number | null;
    transitions: number;
    version: number;
    updated_at: number;
  };
  bulwark_alert_outbox: {
    id: Generated<number>;
    /** `<rule>:<transition>:<receiver>`: one notification per transition and receiver. */
    key: string;
    receiver: string;
    /** JSON text of the notification. */
    payload: string;
    /** 'pending' | 'sent' | 'dead' | 'silenced' | 'inhibited'. */
    state: string;
    attempts: number;
    next_at: number;
    last_error: string | null;
    created_at: number;
    sent_at: number | null;
  };
  bulwark_metric_points: {
    series: string;
    /** Bucket width in seconds (e.g. 10, 60, 3600). */
    resolution: number;
    /** Bucket start, ms since the epoch. */
    at: number;
    count: number;
    sum: number;
    min: number;
    max: number;
    last: number;
  };
}

/** One stored value with its version. */
export interface KvEntry<T = unknown> {
  namespace: string;
  key: string;
  value: T;
  version: number;
  /** Milliseconds since the epoch. */
  updatedAt: number;
}

/** A small versioned key-value table shared by the subsystems (flags, config, journals). */
export interface KvRepository {
  /** The entry, or `undefined` when the key is absent. */
  get<T = unknown>(namespace: string, key: string): Promise<KvEntry<T> | undefined>;
  /** The entries of `keys` that exist, by key: one query per 500 keys (a page of a list, say). */
  getMany<T = unknown>(namespace: string, keys: readonly string[]): Promise<Map<string, KvEntry<T>>>;
  /**
   * Writes `value` (JSON-serialisable). With `ifVersion`, writes only if the stored version equals it
   * (`0` = only if absent) and otherwise throws `BWK_ERR_STORE_CONFLICT`. Returns the new entry.
   */
  put<T = unknown>(
    namespace: string,
    key: string,
    value: T,
    opts?: { ifVersion?: number },
  ): Promise<KvEntry<T>>;
  /**
   * Writes many entries in one statement per 1 000 (upserts, no compare-and-set): cheaper than
   * `put` per entry when the caller batches, e.g. a journal's group commit.
   */
  putMany<T = unknown>(namespace: string, entries: { key: string; value: T }[]): Promise<void>;
  /** Removes the key; resolves `true` if something was removed. */
  delete(namespace: string, key: string): Promise<boolean>;
  /**
   * Removes `keys` in one statement per 500 (each atomic on its own); resolves with how many entries
   * were removed. Cheaper than `delete` per key when the caller batches, e.g. a journal's cleanup.
   */
  deleteMany(namespace: string, keys: readonly string[]): Promise<number>;
  /**
   * Entries of a namespace ordered by key, optionally those whose key starts with `prefix`, at most
   * `limit`, and only keys after `after` (for paging).
   */
  list<T = unknown>(
    namespace: string,
    opts?: { prefix?: string; limit?: number; after?: string },
  ): Promise<KvEntry<T>[]>;
  /** How many entries a namespace holds (those whose key starts with `prefix`): one COUNT query. */
  count(namespace: string, opts?: { prefix?: string }): Promise<number>;
}

/** One audit record: who did what to what, and when. */
export interface AuditRecord {
  id: number;
  /** Milliseconds since the epoch. */
  at: number;
  actor: string;
  action: string;
  target: string;
  detail: unknown;
}

/**
 * How much of the audit log is kept. Older and surplus rows are deleted in the background (by
 * `pruneAudit()` in `audit-retention.ts`).
 */
export interface AuditRetention {
  /** Rows older than this are deleted, ms (default 90 days). */
  maxAgeMs: number;
  /** Only the newest rows are kept beyond this many (default 100 000). */
  maxRows: number;
  /** Per target, only the newest rows are kept beyond this many (default 1 000 refusal summaries). */
  targetCaps: Readonly<Record<string, number>>;
  /** Rows deleted per statement (default 500): short statements that other writers wait little for. */
  batchSize: number;
  /** Statements per run at most (default 200); the rest waits for the next run. */
  maxBatches: number;
}

/**
 * Append-only audit log. Rows are removed only by the retention (`prune()`): by age, a total cap
 * and per-target caps (see `AuditRetention`).
 */
export interface AuditLog {
  append(entry: {
    actor: string;
    action: string;
    target: string;
    detail?: unknown;
    at?: number;
  }): Promise<AuditRecord>;
  /**
   * Counts a repeated event without writing it: occurrences with the same `key` become one summary
   * row per flush (`detail` of the first, plus `count`, `firstAt`, `lastAt`, `samples`). For floods
   * (refused requests): costs a map update, never I/O, and memory is bounded (keys beyond the cap
   * fold into one overflow row per action). Never throws.
   */
  tally(entry: TallyEntry): void;
  /** Writes the tallied summaries (the store does it every minute and on close). */
  flush(): Promise<void>;
  /** Applies the retention in small batches; resolves with the rows deleted (the store runs it every 10 min). */
  prune(): Promise<number>;
  /**
   * Newest first; `excludeTarget` leaves one target out (e.g. the refusal summaries); `actor` exact,
   * `actionPrefix` the actions that start with it (`flag.`); `beforeId` pages back.
   */
  list(opts?: {
    limit?: number;
    target?: string;
    excludeTarget?: string;
    beforeId?: number;
    actor?: string;
    actionPrefix?: string;
  }): Promise<AuditRecord[]>;
}

/** Status of one migration. */
export interface MigrationState {
  name: string;
  /** Milliseconds since the epoch, or undefined when not applied. */
  executedAt: number | undefined;
  /** Applied by a part this process does not include (an app's own part, seen from the CLI). */
  foreign?: true;
}

/**
 * A schema history: migrations by name, for one engine. Asynchronous so that the code of a part's
 * migrations is imported only when the store migrates.
 */
export type MigrationSource = (engine: StoreEngine) => Promise<Record<string, Migration>>;

/** Schema migrations, applied in name order. */
export interface Migrations {
  /** Applies every pending migration; returns the names applied. */
  up(): Promise<string[]>;
  /** Reverts the last `steps` (default 1) applied migrations; returns the names reverted. */
  down(steps?: number): Promise<string[]>;
  status(): Promise<MigrationState[]>;
}

/** Called after every query with its duration; used for metrics. Must not throw. */
export type QueryObserver = (event: {
  engine: StoreEngine;
  /** select | insert | update | delete | other */
  operation: string;
  durationMs: number;
  failed: boolean;
}) => void;

/** A query {@link Store.readAside} can run: a Kysely select, say. */
export interface AsideQuery<R> {
  compile(): CompiledQuery;
  execute(): Promise<R[]>;
}

/**
 * The Bulwark store: Kysely over better-sqlite3 (embedded default) or pg (`DATABASE_URL`).
 * Nothing connects until `createStore()` is awaited; `close()` releases every connection and is
 * safe to call twice.
 */

export interface Store {
  readonly engine: StoreEngine;
  /**
   * The query builder, for subsystems with their own tables. Every driver failure under it (refused
   * or lost connection, a query in flight when the server dies) rejects with
   * `BWK_ERR_STORE_UNAVAILABLE`: its queries need no guard of their own.
   */
  readonly db: Kysely<StoreTables>;
  readonly kv: KvRepository;
  readonly audit: AuditLog;
  readonly migrations: Migrations;
  /** A trivial round trip; resolves with its latency in ms or rejects with `BWK_ERR_STORE_UNAVAILABLE`. */
  ping(): Promise<number>;
  /**
   * Runs a read-only query that may walk many rows (a count over a whole table) where it does not
   * hold up the event loop: on SQLite in a file, on a worker thread with a connection of its own
   * (`src/store/reader.ts`); else as `query.execute()`. Failures as the `db`'s.
   */
  readAside<R>(query: AsideQuery<R>): Promise<R[]>;
  /**
   * PostgreSQL: the pooled connections checked out now, with the stacks that took them (leak
   * detection reports those held long). Undefined on SQLite, which has one connection and no pool.
   */
  readonly checkouts?: Checkouts | undefined;
  close(): Promise<void>;
}

export type { StoreCheckpoint };

/** Where a store's whole-table reads run: see {@link StoreOptions.readAside}. */
export type StoreReadAside = 'worker' | 'inline';

/** SQLite durability of a commit: see {@link StoreOptions.synchronous}. */
export type StoreSynchronous = 'normal' | 'full';

/** Options of `createStore()`. */
export interface StoreOptions {
  /** PostgreSQL connection URL; unset = SQLite. */
  databaseUrl?: string | undefined;
  /**
   * PostgreSQL: deadline of one query, ms (default 30 000). A query with no answer by then fails with
   * `BWK_ERR_STORE_UNAVAILABLE` and its connection is closed; the migrations have no deadline.
   */
  queryTimeoutMs?: number | undefined;
  /**
   * Directory of the SQLite file `bulwark.sqlite`: created 0700 if missing, tightened to 0700 if
   * looser and ours (the file, `-wal` and `-shm` are 0600). Ignored with `databaseUrl`.
   */
  dataDir?: string;
  /** SQLite file path override (`:memory:` allowed), for tests and tools. */
  sqliteFile?: string;
  /**
   * SQLite: how hard a commit is pushed to the disk (`PRAGMA synchronous`). `'normal'` (default):
   * a committed write survives a process crash or `kill -9`, the last commits may be lost on power
   * loss or an OS crash. `'full'`: the WAL is fsynced at every commit, so a commit survives power
   * loss too, for a slower write. Any other value rejects with `BWK_ERR_STORE_OPTIONS`. Ignored on
   * PostgreSQL (its own `synchronous_commit` decides).
   */
  synchronous?: StoreSynchronous | undefined;
  /**
   * SQLite: who checkpoints the WAL (copies its pages into the database file). `'background'`
   * (default): once the WAL has grown past 1 MiB (the store part: from the start), a worker thread with its own connection runs
   * PASSIVE checkpoints every 100 ms while writes come (it never blocks the app's reads or writes),
   * so no commit of the app's stalls its event loop for the copy and fsync (5–10 ms every ~4 MB
   * written); costs one idle thread. `'inline'`: SQLite's default, the commit that takes the WAL
   * past 1 000 pages checkpoints. Any other value rejects with `BWK_ERR_STORE_OPTIONS`. Ignored on
   * PostgreSQL.
   */
  checkpoint?: StoreCheckpoint | undefined;
  /** Tuning of the background checkpoints (tests shorten it). */
  checkpointer?: CheckpointerOptions | undefined;
  /**
   * SQLite in a file: where reads that walk a whole table run (`Store.readAside`: the queue state
   * counts of each scrape). `'worker'` (default): on a worker thread with a connection of its own,
   * started at the first such read, so the app's event loop never stalls for them (~60 ms for a
   * 35 000-job spool under load); costs one idle thread. `'inline'`: on the app's connection, as
   * any query (the CLI's commands: a thread costs a short command ~30 ms and 9 MiB). Any other
   * value rejects with `BWK_ERR_STORE_OPTIONS`. Ignored in memory and on PostgreSQL.
   */
  readAside?: StoreReadAside | undefined;
  /** Told when the read worker cannot start or stops (its reads then run on the app's connection). */
  onReadAsideError?: ((error: Error) => void) | undefined;
  /** Run pending migrations while opening (default true). */
  migrate?: boolean;
  /**
   * The schema history to apply, in name order (default the store's own: `0001_kv`, `0002_audit`).
   * `createBulwark()` passes the migrations of every part; the package's `createStore()` those of
   * every part of Bulwark. A database records the names applied: a store opened with a history that
   * lacks one of them fails to migrate (`BWK_ERR_STORE_MIGRATION_FAILED`).
   */
  migrations?: MigrationSource;
  /** PostgreSQL schema to use (created if missing; default the server's current schema, usually `public`); lower-case letters, digits and `_`. Tests use one schema each. */
  schema?: string;
  onQuery?: QueryObserver;
  /**
   * The audit log's upkeep: what the retention keeps (default 90 days, 100 000 rows, 1 000 refusal
   * summaries), how often it runs (`pruneEveryMs`, default 10 min) and how often tallied summaries
   * are written (`flushEveryMs`, default 60 s), and how many keys are tallied (`maxTallyKeys`,
   * default 1 000). `false`: no timers (a short-lived tool; call `flush()`/`prune()` yourself).
   */
  audit?:
    | false
    | {
        retention?: Partial<AuditRetention>;
        pruneEveryMs?: number;
        flushEveryMs?: number;
        maxTallyKeys?: number;
      };
  /**
   * SQLite: told when the data directory or a database file was readable by others (and whether it
   * was tightened). Default: a Node process warning with code `BULWARK_PERMISSIONS`.
   */
  onPermissionWarning?: (message: string) => void;
}

export type StoreDatabase = Kysely<StoreTables>;

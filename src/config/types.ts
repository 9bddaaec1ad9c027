import type { TObject } from 'typebox';
import type { BulwarkError } from '../errors/index.js';

/** What a secret's value is replaced with in every output of the manager. */
export const REDACTED = '[redacted]';

/** The layer a config value came from, lowest first. */
export type ConfigLayer = 'default' | 'file' | 'env';

/** The file formats the manager reads and writes. */
export type ConfigFormat = 'json' | 'dotenv';

/** The subset of a pino logger the manager logs through. */
export interface ConfigLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Options of {@link ConfigManager}. */
export interface ConfigManagerOptions<S extends TObject> {
  /** The service's TypeBox object schema; `default`s are the lowest layer, `secret: true` marks secrets. */
  schema: S;
  /** The config file: `*.json` (JSON) or `*.env` / `.env` (dotenv). It may not exist yet. */
  file: string;
  /** Environment to read the env layer from; default `process.env`. Read once, at `start()`. */
  env?: NodeJS.ProcessEnv;
  /** Variables are `<envPrefix>_<PATH_IN_UPPER_SNAKE>`; default no prefix (`DB_POOL_SIZE`). */
  envPrefix?: string;
  /** Dotted paths of secret fields, in addition to the schema's `secret: true` fields. */
  secrets?: string[];
  /** Revisions kept in the sidecar directory; default 50, the oldest are deleted. */
  historyLimit?: number;
  /** Author recorded on writes that do not name one; default `process:<pid>`. */
  author?: string;
  /** Default: a logger writing JSON lines to stderr for warnings and errors only. */
  logger?: ConfigLogger;
  /** Inter-process lock tuning (milliseconds); the defaults suit production. */
  lock?: LockTiming;
  /** Debounce of file-system events, ms; default 50. */
  watchDebounceMs?: number;
  /** Period of the stat fallback that catches events `fs.watch` missed, ms; default 1000. */
  watchPollMs?: number;
}

/** Timing of the inter-process lock on the config file. */
export interface LockTiming {
  /** A lock whose holder has not refreshed it for this long is stale and taken over; default 5000. */
  staleMs?: number;
  /** How often the holder refreshes its lock; default 1000. */
  updateMs?: number;
  /** How long a writer waits for the lock before `BWK_ERR_CONFIG_LOCKED`; default 8000 (> staleMs). */
  waitMs?: number;
}

/** Options of a write (`set`, `replace`, `rollback`). */
export interface WriteOptions {
  /** Compare-and-set: the write fails with `BWK_ERR_CONFIG_CONFLICT` unless this is the current revision. */
  ifRevision?: number;
  /** Recorded in the revision; default the manager's `author`. */
  author?: string;
  /** Recorded in the revision. */
  reason?: string;
}

/** One changed leaf between two configs; secrets show as `'[redacted]'`. */
export interface DiffEntry {
  /** Dotted path, e.g. `db.poolSize`. */
  path: string;
  /** `undefined` when the field was added. */
  before: unknown;
  /** `undefined` when the field was removed. */
  after: unknown;
}

/** A revision as shown by `history()`: everything but the raw file content. */
export interface RevisionInfo {
  /** 1, 2, 3, ... one per change of the file. */
  revision: number;
  /** ISO 8601 time of the write. */
  at: string;
  author: string;
  reason: string;
  /** Changes of the file's resolved config (defaults + file) against the previous revision. */
  diff: DiffEntry[];
}

/** A revision as stored in `<dir>/.<basename>.revisions/000042.json`. */
export interface RevisionRecord extends RevisionInfo {
  /** The whole file content of this revision (secrets included: the file holds them too). */
  content: string;
}

/** Where one value of the active config came from. */
export interface Explanation {
  path: string;
  /** `'[redacted]'` for a secret. */
  value: unknown;
  layer: ConfigLayer;
  /** `config.json:12` for the file, the variable name for env, `schema` for a default. */
  source: string;
}

/** What `onChange` listeners receive. */
export interface ChangeEvent<T> {
  revision: number;
  /** Changes of the active (typed, merged) config; secrets redacted. */
  diff: DiffEntry[];
  /** The new active config, deep-frozen. */
  config: T;
}

/** What `start()` resolves with. */
export interface StartReport {
  revision: number;
  /** `file`: the file on disk is active; `revision`: it was invalid and the last good revision is. */
  from: 'file' | 'revision' | 'defaults';
  /** Why the file was not used, when `from` is `revision`. */
  error?: BulwarkError;
}

type Primitive = string | number | boolean | bigint | symbol | null | undefined;

/** Every dotted path of a config type: `'db' | 'db.poolSize' | ...`. */
export type ConfigPath<T> = T extends Primitive | readonly unknown[]
  ? never
  : {
      [K in keyof T & string]:
        | K
        | (NonNullable<T[K]> extends Primitive | readonly unknown[]
            ? never
            : `${K}.${ConfigPath<NonNullable<T[K]>>}`);
    }[keyof T & string];

/** The type of the value at a dotted path. */
export type ConfigValue<T, P extends string> = P extends `${infer K}.${infer R}`
  ? K extends keyof T
    ? ConfigValue<NonNullable<T[K]>, R>
    : never
  : P extends keyof T
    ? T[P]
    : never;

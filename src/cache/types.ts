/**
 * A cached value with its metadata. `value` is any JSON-serialisable value. Times are
 * milliseconds since the epoch.
 */
export interface CacheEntry<T = unknown> {
  value: T;
  /** When the value stops being fresh. */
  expiresAt: number;
  /** Until when a stale value may still be served if refreshing it fails (`>= expiresAt`). */
  staleUntil: number;
  /** Monotonic version (write time in ms plus a counter): newest wins when journals replay. */
  version: number;
  /** Tags for group invalidation. */
  tags?: string[];
}

/**
 * One cache tier. Drivers are plain: they throw on failure and know nothing of fallbacks,
 * deadlines or metrics (the tiered cache and the failover engine own those).
 */
export interface CacheStore {
  readonly name: string;
  /** The entry, or undefined when absent or past `staleUntil`. */
  get<T = unknown>(key: string): Promise<CacheEntry<T> | undefined>;
  /** Stores the entry until its `staleUntil`. */
  set<T = unknown>(key: string, entry: CacheEntry<T>): Promise<void>;
  /** Removes keys; resolves with how many existed. */
  delete(keys: string[]): Promise<number>;
  /** Removes every key carrying `tag`; resolves with how many were removed. */
  deleteTag(tag: string): Promise<number>;
  /** Removes every key of this store (its prefix/namespace only). */
  clear(): Promise<void>;
  close(): Promise<void>;
}

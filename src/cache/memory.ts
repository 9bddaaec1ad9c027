import { LRUCache } from 'lru-cache';
import { bulwarkError } from '../errors/index.js';
import type { CacheEntry, CacheStore } from './types.js';

/** Why {@link MemoryCacheStore} dropped an entry on its own (explicit deletes and overwrites are not reported). */
export type MemoryEvictReason =
  /** `maxEntries` or `maxBytes` was reached, or the entry alone is larger than `maxBytes`. */
  | 'capacity'
  /** The entry was found past its `staleUntil`. */
  | 'expired';

/** Options of {@link MemoryCacheStore}. */
export interface MemoryCacheStoreOptions {
  /** Default `'memory'`. */
  name?: string;
  /** Most entries held; least recently used ones are evicted beyond it. Default 10 000. */
  maxEntries?: number;
  /**
   * Most bytes held, counted as the UTF-8 length of each entry's JSON (measured once, at `set`).
   * Default 64 MiB.
   */
  maxBytes?: number;
  /** Clock in epoch milliseconds, compared with `staleUntil`. Default `Date.now`. */
  now?: () => number;
  /**
   * Called once per entry the store drops by itself, after the store is consistent again (it may
   * call back into the store). An exception thrown here propagates to the caller of the operation.
   */
  onEvict?: (key: string, reason: MemoryEvictReason) => void;
}

interface Held {
  /** Decoded once at `set` and deep-frozen, so every hit can share it without a copy. */
  entry: CacheEntry<unknown>;
  staleUntil: number;
  tags: readonly string[];
}

/** Freezes a JSON-decoded value in place (plain objects and arrays only). */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * In-process {@link CacheStore}: an LRU bounded by entry count and by bytes, with a tag index.
 *
 * - Entries go through JSON once at `set` (so the store behaves like the Redis one: a `Date` comes
 *   back as a string) and are kept deep-frozen: a hit returns the shared, immutable entry without
 *   copying or parsing (an L1 hit is the hottest path of the cache), and no caller can mutate it.
 * - An entry is a miss from `now() >= staleUntil` on. Expired entries are dropped when read (or
 *   evicted like any other); until then they count in `size` and `bytes`.
 * - Writes are last-write-wins; `version` is stored, not compared.
 * - Nothing here does I/O and nothing is kept across a restart. The only errors are
 *   `BWK_ERR_CACHE_VALUE_INVALID` (a value JSON cannot hold) and `BWK_ERR_CACHE_OPTIONS`.
 */
export class MemoryCacheStore implements CacheStore {
  readonly name: string;
  readonly #cache: LRUCache<string, Held>;
  readonly #tags = new Map<string, Set<string>>();
  readonly #now: () => number;
  readonly #maxBytes: number;
  readonly #onEvict: MemoryCacheStoreOptions['onEvict'];
  // Evictions are reported only once an operation has finished its own bookkeeping, so a throwing
  // or re-entrant `onEvict` cannot leave the tag index half-updated.
  #pending: [string, MemoryEvictReason][] = [];

  constructor(opts: MemoryCacheStoreOptions = {}) {
    this.name = opts.name ?? 'memory';
    this.#now = opts.now ?? Date.now;
    this.#onEvict = opts.onEvict;
    const maxEntries = opts.maxEntries ?? 10_000;
    this.#maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
    for (const [option, value] of [
      ['maxEntries', maxEntries],
      ['maxBytes', this.#maxBytes],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw bulwarkError('BWK_ERR_CACHE_OPTIONS', {
          name: this.name,
          detail: `${option} must be a positive integer, got ${value}`,
        });
      }
    }
    // No lru-cache `ttl`: its clock skips entries started at time 0, needs integer TTLs and caches
    // `now` behind a timer. Comparing `staleUntil` with our own clock on read is exact and testable.
    this.#cache = new LRUCache<string, Held>({
      max: maxEntries,
      maxSize: this.#maxBytes,
      // disposeAfter, not dispose: it runs once lru-cache is consistent again, for every removal
      // (eviction, overwrite, delete, clear), which is what keeps the tag index exact.
      disposeAfter: (held, key, reason) => {
        this.#untag(key, held.tags);
        if (reason === 'evict') this.#pending.push([key, 'capacity']);
      },
    });
  }

  /** Entries held, expired-but-not-yet-dropped ones included. */
  get size(): number {
    return this.#cache.size;
  }

  /** Sum of the held entries' JSON sizes in bytes; never above `maxBytes`. */
  get bytes(): number {
    return this.#cache.calculatedSize;
  }

  /** The entry (shared and deep-frozen), or `undefined` when absent or at/after its `staleUntil`. */
  async get<T = unknown>(key: string): Promise<CacheEntry<T> | undefined> {
    const held = this.#cache.get(key);
    if (held === undefined) return undefined;
    if (this.#now() >= held.staleUntil) {
      this.#cache.delete(key);
      this.#pending.push([key, 'expired']);
      this.#flush();
      return undefined;
    }
    return held.entry as CacheEntry<T>;
  }

  /**
   * Stores the entry until its `staleUntil`. An entry already past it, or larger than `maxBytes`,
   * is not stored and removes any older entry under `key` (the newest write must win, even when it
   * says "nothing"); the oversized case is reported to `onEvict` as `'capacity'`.
   */
  async set<T = unknown>(key: string, entry: CacheEntry<T>): Promise<void> {
    const json = encodeEntry(this.name, key, entry);
    const bytes = Buffer.byteLength(json);
    if (this.#now() >= entry.staleUntil || bytes > this.#maxBytes) {
      this.#cache.delete(key);
      if (bytes > this.#maxBytes) this.#pending.push([key, 'capacity']);
    } else {
      const tags = [...new Set(entry.tags ?? [])];
      // Overwriting disposes the old entry (and its tags) inside this call, so the new tags go in after.
      const decoded = deepFreeze(decodeEntry<unknown>(json));
      this.#cache.set(key, { entry: decoded, staleUntil: entry.staleUntil, tags }, { size: bytes });
      for (const tag of tags) {
        let keys = this.#tags.get(tag);
        if (keys === undefined) this.#tags.set(tag, (keys = new Set()));
        keys.add(key);
      }
    }
    this.#flush();
  }

  /** Removes `keys`; resolves with how many held an unexpired entry. */
  async delete(keys: string[]): Promise<number> {
    let removed = 0;
    for (const key of keys) {
      const held = this.#cache.peek(key);
      if (held === undefined) continue;
      this.#cache.delete(key);
      if (this.#now() < held.staleUntil) removed++;
    }
    this.#flush();
    return removed;
  }

  /** Removes every entry currently carrying `tag`; resolves with how many were unexpired. */
  async deleteTag(tag: string): Promise<number> {
    const keys = this.#tags.get(tag);
    return keys === undefined ? 0 : this.delete([...keys]);
  }

  /** Removes every entry (not reported to `onEvict`). */
  async clear(): Promise<void> {
    this.#cache.clear();
    this.#tags.clear();
    this.#pending = [];
  }

  /** Drops every entry; the store stays usable. */
  async close(): Promise<void> {
    await this.clear();
  }

  #untag(key: string, tags: readonly string[]): void {
    for (const tag of tags) {
      const keys = this.#tags.get(tag);
      if (keys === undefined) continue;
      keys.delete(key);
      if (keys.size === 0) this.#tags.delete(tag);
    }
  }

  #flush(): void {
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    for (const [key, reason] of pending) this.#onEvict?.(key, reason);
  }
}

/**
 * The JSON text both cache drivers store for an entry: only the {@link CacheEntry} fields, `tags`
 * left out when absent. Throws `BWK_ERR_CACHE_VALUE_INVALID` when JSON cannot represent the value
 * (`undefined`, a function, a symbol, a `BigInt`, a cyclic object).
 */
export function encodeEntry(store: string, key: string, entry: CacheEntry<unknown>): string {
  const { value, expiresAt, staleUntil, version, tags } = entry;
  let json: string | undefined;
  let cause: unknown;
  try {
    // JSON.stringify silently drops an undefined/function/symbol property: the entry would come back
    // without a value, so those are rejected below instead of being stored.
    if (value !== undefined && typeof value !== 'function' && typeof value !== 'symbol') {
      const fields = { value, expiresAt, staleUntil, version };
      json = JSON.stringify(tags === undefined ? fields : { ...fields, tags });
    }
  } catch (error) {
    cause = error;
  }
  if (json === undefined) {
    throw bulwarkError(
      'BWK_ERR_CACHE_VALUE_INVALID',
      { store, key, detail: cause instanceof Error ? cause.message : `a value of type ${typeof value}` },
      { cause },
    );
  }
  return json;
}

/** Parses what {@link encodeEntry} wrote. */
export function decodeEntry<T>(json: string): CacheEntry<T> {
  return JSON.parse(json) as CacheEntry<T>;
}

import type { Redis } from 'ioredis';
import { bulwarkError } from '../errors/index.js';
import { decodeEntry, encodeEntry } from './memory.js';
import type { CacheEntry, CacheStore } from './types.js';

/** Options of {@link RedisCacheStore}. */
export interface RedisCacheStoreOptions {
  /**
   * A client the caller created. It must not have its own `keyPrefix` (SCAN patterns and the Lua
   * script would not see it). Its timeouts and offline-queue settings decide how fast a failure shows.
   */
  client: Redis;
  /** Non-empty namespace of this store, e.g. `'bulwark:cache:'`; every key it touches starts with it. */
  prefix: string;
  /** Default `'redis'`. */
  name?: string;
  /** Whether `close()` disconnects the client. Default false: the caller owns it. */
  ownsClient?: boolean;
  /** Clock in epoch milliseconds, for the PX of each write and the `staleUntil` check on read. Default `Date.now`. */
  now?: () => number;
}

// Deletes every entry carrying a tag, and the tag's set, in one atomic step.
const DELETE_TAG_LUA = `
-- Input:  KEYS[1] the tag set <prefix>t:<tag>; its members are value keys <prefix>v:<key>.
--         ARGV[1] the tag.
-- Output: the number of value keys deleted.
-- A member is deleted only if its current entry still lists the tag: an overwrite with other tags
-- leaves the old membership behind (SET does not know the old tags). A member whose JSON cannot be
-- decoded is deleted too, since over-invalidating a cache is safe and serving stale data is not.
local removed = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local json = redis.call('GET', key)
  if json then
    local ok, entry = pcall(cjson.decode, json)
    local drop = not ok or type(entry) ~= 'table'
    if not drop and type(entry.tags) == 'table' then
      for _, tag in ipairs(entry.tags) do
        if tag == ARGV[1] then
          drop = true
          break
        end
      end
    end
    if drop then
      removed = removed + redis.call('UNLINK', key)
    end
  end
end
redis.call('UNLINK', KEYS[1])
return removed
`;

const SCAN_BATCH = 500;

/**
 * {@link CacheStore} on a Redis server through a caller-supplied ioredis client.
 *
 * Layout: the entry's JSON at `<prefix>v:<key>` with `PX = staleUntil - now` (so Redis drops it at
 * `staleUntil`), and per tag a set `<prefix>t:<tag>` of value keys that lives at least as long as its
 * longest-lived member. `get` is one GET; `set` is one SET PX without tags, one MULTI/EXEC with
 * them (SET PX, and per tag SADD and PEXPIRE); `deleteTag` is one Lua script; `clear` SCANs and
 * UNLINKs this prefix only, never FLUSHDB.
 *
 * Errors: every Redis or connection failure rejects as ioredis reports it (a timeout, a closed
 * connection, an error reply inside the transaction); nothing is retried or swallowed here, the
 * failover engine handles it. A timed-out write may still be applied later by the server. Values
 * JSON cannot hold reject with `BWK_ERR_CACHE_VALUE_INVALID` before any I/O. Writes are
 * last-write-wins; `version` is stored, not compared. After a server crash without persistence the
 * store is simply empty.
 */
export class RedisCacheStore implements CacheStore {
  readonly name: string;
  readonly #client: Redis;
  readonly #prefix: string;
  readonly #ownsClient: boolean;
  readonly #now: () => number;

  constructor(opts: RedisCacheStoreOptions) {
    this.name = opts.name ?? 'redis';
    this.#client = opts.client;
    this.#prefix = opts.prefix;
    this.#ownsClient = opts.ownsClient ?? false;
    this.#now = opts.now ?? Date.now;
    const problem =
      opts.prefix === ''
        ? 'prefix must not be empty (clear() would remove the whole database)'
        : opts.client.options.keyPrefix
          ? `the client has keyPrefix ${JSON.stringify(opts.client.options.keyPrefix)}; use prefix instead`
          : undefined;
    if (problem !== undefined)
      throw bulwarkError('BWK_ERR_CACHE_OPTIONS', { name: this.name, detail: problem });
  }

  /** The entry, or `undefined` when absent or at/after its `staleUntil` (one GET). */
  async get<T = unknown>(key: string): Promise<CacheEntry<T> | undefined> {
    const json = await this.#client.get(this.#valueKey(key));
    if (json === null) return undefined;
    const entry = decodeEntry<T>(json);
    // PX is rounded up to whole milliseconds and Redis expires lazily: the entry's own deadline decides.
    return this.#now() >= entry.staleUntil ? undefined : entry;
  }

  /**
   * Stores the entry until its `staleUntil`, atomically with its tag memberships. An entry already
   * past `staleUntil` is not written; any older entry under `key` is deleted instead, so the newest
   * write still wins.
   */
  async set<T = unknown>(key: string, entry: CacheEntry<T>): Promise<void> {
    const json = encodeEntry(this.name, key, entry);
    const valueKey = this.#valueKey(key);
    const ttl = Math.ceil(entry.staleUntil - this.#now());
    if (ttl <= 0) {
      await this.#client.unlink(valueKey);
      return;
    }
    if (entry.tags === undefined || entry.tags.length === 0) {
      // One SET is atomic by itself. A transaction around it (MULTI, SET, EXEC and ioredis's
      // pipeline) cost ~3× the client's CPU per write, paid by every miss refilling an emptied
      // Redis and every journal record replayed into it (issue 18).
      await this.#client.set(valueKey, json, 'PX', ttl);
      return;
    }
    const tx = this.#client.multi().set(valueKey, json, 'PX', ttl);
    for (const tag of new Set(entry.tags)) {
      const tagKey = this.#tagKey(tag);
      // GT alone never applies to a set SADD just created (no TTL counts as infinite), hence NX first.
      tx.sadd(tagKey, valueKey).pexpire(tagKey, ttl, 'NX').pexpire(tagKey, ttl, 'GT');
    }
    const results = await tx.exec();
    // exec() resolves even when a command inside the transaction failed; surface that failure.
    for (const [error] of results ?? []) if (error) throw error;
  }

  /** Removes `keys` (one UNLINK); resolves with how many existed. Tag sets are cleaned lazily. */
  async delete(keys: string[]): Promise<number> {
    if (keys.length === 0) return 0;
    return this.#client.unlink(keys.map((key) => this.#valueKey(key)));
  }

  /** Removes every key whose current entry carries `tag`, and the tag set (one atomic script). */
  async deleteTag(tag: string): Promise<number> {
    // EVAL rather than defineCommand: the client is borrowed, so we add no commands to it, and a
    // rare invalidation can afford sending the script text.
    return (await this.#client.eval(DELETE_TAG_LUA, 1, this.#tagKey(tag), tag)) as number;
  }

  /**
   * Removes every key under this store's prefix (SCAN + UNLINK in batches). Not atomic: an entry
   * written while it runs may survive.
   */
  async clear(): Promise<void> {
    const match = `${this.#prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    let cursor = '0';
    do {
      const [next, keys] = await this.#client.scan(cursor, 'MATCH', match, 'COUNT', SCAN_BATCH);
      if (keys.length > 0) await this.#client.unlink(keys);
      cursor = next;
    } while (cursor !== '0');
  }

  /**
   * Disconnects the client if this store owns it (immediately: commands in flight reject, so a
   * paused or dead server cannot make shutdown hang); otherwise does nothing.
   */
  async close(): Promise<void> {
    if (this.#ownsClient) this.#client.disconnect();
  }

  #valueKey(key: string): string {
    return `${this.#prefix}v:${key}`;
  }

  #tagKey(tag: string): string {
    return `${this.#prefix}t:${tag}`;
  }
}

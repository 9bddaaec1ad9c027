// One conformance suite for every CacheStore driver (STYLE.md §12), run against the in-process store
// and against a real redis-server, then the Redis driver under faults from the harness.
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { MemoryCacheStore, type MemoryEvictReason } from '../src/cache/memory.js';
import { RedisCacheStore } from '../src/cache/redis.js';
import type { CacheEntry, CacheStore } from '../src/cache/types.js';
import { isBulwarkError } from '../src/errors/index.js';
import { redisClient, startRedis, uniquePrefix, type RedisServer } from './helpers/redis.js';

/** What the suite needs from one driver. */
interface Backend {
  /** A new empty store, isolated from every other store this backend made. */
  create(): CacheStore;
  /** The clock the stores compare `staleUntil` with. */
  now(): number;
  /**
   * Makes `ms` pass for the stores: moves an injected clock. Undefined for a real clock, where the
   * test polls instead (the entry is written with a real PX).
   */
  advance?: (ms: number) => void;
}

function entry<T>(value: T, now: number, ttlMs = 60_000, tags?: string[]): CacheEntry<T> {
  return {
    value,
    expiresAt: now + ttlMs / 2,
    staleUntil: now + ttlMs,
    version: now,
    ...(tags === undefined ? {} : { tags }),
  };
}

function cacheStoreSuite(name: string, setup: () => Backend): void {
  describe(`CacheStore conformance: ${name}`, () => {
    let backend: Backend;
    let store: CacheStore;
    const put = (key: string, value: unknown, tags?: string[], ttlMs?: number) =>
      store.set(key, entry(value, backend.now(), ttlMs, tags));

    beforeEach(() => {
      backend = setup();
      store = backend.create();
    });

    it('misses an absent key', async () => {
      expect(await store.get('absent')).toBeUndefined();
    });

    it('round-trips nested JSON values and the entry metadata', async () => {
      const values: Record<string, unknown> = {
        nested: { a: [1, 2.5, { b: null, c: [true, false] }], 'ключ 🔑': 'значение ✓ 中文 \u0000 "q"' },
        unicode: '𝄞 emoji 🎉 and \u2028 separators',
        empty: '',
        zero: 0,
        false: false,
        null: null,
        array: [[], {}, [[[]]]],
      };
      for (const [key, value] of Object.entries(values)) await put(key, value, ['t1', 't2']);
      for (const [key, value] of Object.entries(values)) {
        const now = backend.now();
        const got = await store.get(key);
        expect(got?.value, key).toEqual(value);
        expect(got?.tags).toEqual(['t1', 't2']);
        expect(got?.staleUntil).toBeGreaterThan(now);
        expect(got?.expiresAt).toBeLessThanOrEqual(got?.staleUntil ?? 0);
      }
      const untagged = entry({ x: 1 }, backend.now());
      await store.set('untagged', untagged);
      expect(await store.get('untagged')).toEqual(untagged);
    });

    it('returns a value the caller cannot use to mutate the cache', async () => {
      await put('k', { list: [1] });
      const first = await store.get<{ list: number[] }>('k');
      try {
        first?.value.list.push(2); // a copy (Redis) or frozen (memory, throws in strict mode)
      } catch {
        // frozen
      }
      expect((await store.get('k'))?.value).toEqual({ list: [1] });
    });

    it('overwrites: the newest write wins', async () => {
      await put('k', 'old');
      await put('k', { new: true });
      expect((await store.get('k'))?.value).toEqual({ new: true });
    });

    it('makes an entry vanish at its staleUntil', async () => {
      await put('short', 'soon gone', [], 150);
      await put('long', 'stays');
      expect((await store.get('short'))?.value).toBe('soon gone');
      if (backend.advance) {
        backend.advance(149);
        expect((await store.get('short'))?.value).toBe('soon gone');
        backend.advance(1);
        expect(await store.get('short')).toBeUndefined();
      } else {
        await vi.waitFor(async () => expect(await store.get('short')).toBeUndefined(), {
          timeout: 3_000,
          interval: 10,
        });
      }
      expect((await store.get('long'))?.value).toBe('stays');
    });

    it('does not store an entry already past staleUntil, and drops the older one', async () => {
      await put('k', 'live');
      await store.set('k', { ...entry('dead', backend.now()), staleUntil: backend.now() - 1 });
      expect(await store.get('k')).toBeUndefined();
      await store.set('never', { ...entry('dead', backend.now()), staleUntil: backend.now() });
      expect(await store.get('never')).toBeUndefined();
    });

    it('delete removes the given keys and counts those that existed', async () => {
      await put('a', 1);
      await put('b', 2);
      await put('c', 3);
      expect(await store.delete(['a', 'b', 'missing'])).toBe(2);
      expect(await store.delete([])).toBe(0);
      expect(await store.get('a')).toBeUndefined();
      expect(await store.get('b')).toBeUndefined();
      expect((await store.get('c'))?.value).toBe(3);
      expect(await store.delete(['a'])).toBe(0);
    });

    it('deleteTag removes exactly the keys carrying the tag', async () => {
      await put('a', 1, ['red']);
      await put('b', 2, ['red', 'blue']);
      await put('c', 3, ['blue']);
      await put('d', 4);
      expect(await store.deleteTag('red')).toBe(2);
      expect(await store.get('a')).toBeUndefined();
      expect(await store.get('b')).toBeUndefined();
      expect((await store.get('c'))?.value).toBe(3);
      expect((await store.get('d'))?.value).toBe(4);
      expect(await store.deleteTag('red')).toBe(0);
      expect(await store.deleteTag('never-used')).toBe(0);
      expect(await store.deleteTag('blue')).toBe(1);
      expect(await store.get('c')).toBeUndefined();
    });

    it('deleteTag follows overwrites that changed the tags', async () => {
      await put('moved', 'v1', ['old']);
      await put('stays', 'v1', ['old']);
      await put('moved', 'v2', ['new']);
      await put('untagged', 'v1', ['old']);
      await put('untagged', 'v2');
      expect(await store.deleteTag('old')).toBe(1);
      expect(await store.get('stays')).toBeUndefined();
      expect((await store.get('moved'))?.value).toBe('v2');
      expect((await store.get('untagged'))?.value).toBe('v2');
      expect(await store.deleteTag('new')).toBe(1);
      expect(await store.get('moved')).toBeUndefined();
    });

    it('deleteTag ignores keys deleted or re-tagged since', async () => {
      await put('gone', 1, ['t']);
      await put('kept', 2, ['t']);
      await store.delete(['gone']);
      await put('gone', 3, ['other']);
      expect(await store.deleteTag('t')).toBe(1);
      expect((await store.get('gone'))?.value).toBe(3);
    });

    it('clear removes this store only; stores from the same backend are isolated', async () => {
      const other = backend.create();
      await put('shared-name', 'mine', ['t']);
      await other.set('shared-name', entry('theirs', backend.now(), 60_000, ['t']));
      expect((await store.get('shared-name'))?.value).toBe('mine');
      expect((await other.get('shared-name'))?.value).toBe('theirs');

      expect(await store.deleteTag('t')).toBe(1);
      expect((await other.get('shared-name'))?.value).toBe('theirs');

      await put('a', 1, ['t']);
      await put('b', 2);
      await store.clear();
      expect(await store.get('a')).toBeUndefined();
      expect(await store.get('b')).toBeUndefined();
      expect(await store.deleteTag('t')).toBe(0);
      expect((await other.get('shared-name'))?.value).toBe('theirs');
      // Still usable after clear.
      await put('a', 'again');
      expect((await store.get('a'))?.value).toBe('again');
    });

    it('rejects values JSON cannot hold, with a catalogue error and nothing written', async () => {
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      for (const value of [undefined, () => 1, 10n, cyclic]) {
        const error: unknown = await store.set('bad', entry(value, backend.now())).catch((e: unknown) => e);
        expect(isBulwarkError(error, 'BWK_ERR_CACHE_VALUE_INVALID'), String(error)).toBe(true);
      }
      expect(await store.get('bad')).toBeUndefined();
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// In-process store: injected clock.

const EPOCH = 1_700_000_000_000;

cacheStoreSuite('memory', () => {
  let time = EPOCH;
  return {
    create: () => new MemoryCacheStore({ now: () => time }),
    now: () => time,
    advance: (ms) => (time += ms),
  };
});

describe('MemoryCacheStore limits', () => {
  const at = (value: unknown, tags?: string[]) => entry(value, EPOCH, 60_000, tags);
  const clock = () => EPOCH;

  it('evicts the least recently used entry beyond maxEntries, reports it and cleans its tags', async () => {
    const evicted: [string, MemoryEvictReason][] = [];
    const store = new MemoryCacheStore({
      maxEntries: 2,
      now: clock,
      onEvict: (k, r) => evicted.push([k, r]),
    });
    await store.set('a', at(1, ['t']));
    await store.set('b', at(2, ['t']));
    await store.get('a'); // a is now more recent than b
    await store.set('c', at(3, ['t']));
    expect(evicted).toEqual([['b', 'capacity']]);
    expect(store.size).toBe(2);
    expect(await store.get('b')).toBeUndefined();
    expect(await store.deleteTag('t')).toBe(2);
    expect(store.size).toBe(0);
    // Deletes and overwrites are not evictions.
    await store.set('a', at(1));
    await store.set('a', at(2));
    await store.delete(['a']);
    expect(evicted).toHaveLength(1);
  });

  it('bounds bytes by maxBytes, evicting old entries and refusing one that can never fit', async () => {
    const evicted: [string, MemoryEvictReason][] = [];
    const store = new MemoryCacheStore({
      maxBytes: 1_000,
      now: clock,
      onEvict: (k, r) => evicted.push([k, r]),
    });
    const size = Buffer.byteLength(JSON.stringify(at('x'.repeat(200), ['all'])));
    for (let i = 0; i < 10; i++) {
      await store.set(`k${i}`, at('x'.repeat(200), ['all']));
      expect(store.bytes).toBeLessThanOrEqual(1_000);
    }
    const held = Math.floor(1_000 / size);
    expect(store.size).toBe(held);
    expect(store.bytes).toBe(held * size);
    expect(evicted).toEqual(Array.from({ length: 10 - held }, (_, i) => [`k${i}`, 'capacity']));
    expect(await store.deleteTag('all')).toBe(held);
    expect(store.bytes).toBe(0);

    await store.set('big', at('small'));
    expect(store.size).toBe(1);
    await store.set('big', at('é'.repeat(600))); // 1 200 bytes of UTF-8: larger than the whole store
    expect(await store.get('big')).toBeUndefined();
    expect(store.bytes).toBe(0);
    expect(evicted.at(-1)).toEqual(['big', 'capacity']);
  });

  it('reports an expired entry when a read drops it, and stays consistent for a re-entrant onEvict', async () => {
    let time = EPOCH;
    const seen: [string, MemoryEvictReason][] = [];
    const reads: Promise<unknown>[] = [];
    const store: MemoryCacheStore = new MemoryCacheStore({
      now: () => time,
      onEvict: (key, reason) => {
        seen.push([key, reason]);
        reads.push(store.get(key), store.deleteTag('t'));
      },
    });
    await store.set('k', entry('v', time, 100, ['t']));
    time += 100;
    expect(await store.get('k')).toBeUndefined();
    expect(seen).toEqual([['k', 'expired']]);
    expect(await Promise.all(reads)).toEqual([undefined, 0]);
    expect(store.size).toBe(0);
  });

  it('rejects limits that are not positive integers', () => {
    for (const opts of [{ maxEntries: 0 }, { maxBytes: 1.5 }, { maxEntries: Number.NaN }]) {
      expect(() => new MemoryCacheStore(opts)).toThrow(
        expect.objectContaining({ code: 'BWK_ERR_CACHE_OPTIONS' }) as Error,
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// Redis store: real server, real clock.

let shared: RedisServer;
let sharedClient: Redis;

beforeAll(async () => {
  shared = await startRedis();
  sharedClient = redisClient(shared.url);
  await sharedClient.connect();
});

afterAll(async () => {
  sharedClient?.disconnect();
  await shared?.stop();
});

cacheStoreSuite('redis', () => ({
  create: () => new RedisCacheStore({ client: sharedClient, prefix: uniquePrefix('cache') }),
  now: () => Date.now(),
}));

describe('RedisCacheStore on a real server', () => {
  it('lays keys out under the prefix with a PX, and clear() spares keys outside it', async () => {
    // Glob characters in the prefix must be matched literally by clear()'s SCAN.
    const base = uniquePrefix('cache');
    const prefix = `${base}[a]*?\\:`;
    const store = new RedisCacheStore({ client: sharedClient, prefix });
    // Matched by the pattern if the prefix were used unescaped.
    const outside = `${base}a-outside:k`;
    await sharedClient.set(outside, 'keep');
    await store.set('k', entry('v', Date.now(), 10_000, ['t']));

    expect(JSON.parse((await sharedClient.get(`${prefix}v:k`)) ?? 'null')).toMatchObject({
      value: 'v',
      tags: ['t'],
    });
    const valueTtl = await sharedClient.pttl(`${prefix}v:k`);
    expect(valueTtl).toBeGreaterThan(9_000);
    expect(valueTtl).toBeLessThanOrEqual(10_000);
    expect(await sharedClient.smembers(`${prefix}t:t`)).toEqual([`${prefix}v:k`]);

    await store.clear();
    expect(await sharedClient.exists(`${prefix}v:k`, `${prefix}t:t`)).toBe(0);
    expect(await sharedClient.get(outside)).toBe('keep');
  });

  it('writes an entry without tags with one SET (no transaction), with its PX', async () => {
    // On its own server: command counts are server-wide.
    const redis = await startRedis();
    const client = redisClient(redis.url);
    onTestFinished(async () => {
      client.disconnect();
      await redis.stop();
    });
    await client.connect();
    const prefix = uniquePrefix('cache');
    const store = new RedisCacheStore({ client, prefix });
    await client.config('RESETSTAT');
    for (let i = 0; i < 10; i += 1) await store.set(`k${i}`, entry(i, Date.now(), 10_000));
    const stats = await client.info('commandstats');
    const calls = (command: string) =>
      Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    expect(calls('set')).toBe(10);
    expect(calls('multi') + calls('exec')).toBe(0);
    expect((await store.get('k3'))?.value).toBe(3);
    const ttl = await client.pttl(`${prefix}v:k3`);
    expect(ttl).toBeGreaterThan(9_000);
    expect(ttl).toBeLessThanOrEqual(10_000);
  });

  it('keeps a tag set alive as long as its longest-lived member', async () => {
    const prefix = uniquePrefix('cache');
    const store = new RedisCacheStore({ client: sharedClient, prefix });
    const now = Date.now();
    await store.set('long', entry(1, now, 20_000, ['t']));
    await store.set('short', entry(2, now, 5_000, ['t']));
    expect(await sharedClient.pttl(`${prefix}t:t`)).toBeGreaterThan(15_000);
    await store.set('longer', entry(3, now, 40_000, ['t']));
    expect(await sharedClient.pttl(`${prefix}t:t`)).toBeGreaterThan(35_000);
  });

  it('uses its injected clock for the PX and for the staleUntil check on read', async () => {
    const prefix = uniquePrefix('cache');
    const behind = new RedisCacheStore({ client: sharedClient, prefix, now: () => Date.now() - 10_000 });
    const ahead = new RedisCacheStore({ client: sharedClient, prefix, now: () => Date.now() + 6_000 });
    await behind.set('k', entry('v', Date.now(), 5_000));
    expect(await sharedClient.pttl(`${prefix}v:k`)).toBeGreaterThan(14_000);
    expect((await behind.get('k'))?.value).toBe('v');
    // Still in Redis, but past staleUntil by this store's clock.
    expect(await ahead.get('k')).toBeUndefined();
  });

  it('clears more keys than one SCAN batch', async () => {
    const prefix = uniquePrefix('cache');
    const store = new RedisCacheStore({ client: sharedClient, prefix });
    const tx = sharedClient.multi();
    for (let i = 0; i < 2_000; i++) tx.set(`${prefix}v:${i}`, '{}', 'PX', 60_000);
    await tx.exec();
    await store.clear();
    expect(await sharedClient.scan('0', 'MATCH', `${prefix}*`, 'COUNT', 10_000)).toEqual(['0', []]);
  });

  it('deletes a tagged key whose stored JSON is unreadable rather than keep it', async () => {
    const prefix = uniquePrefix('cache');
    const store = new RedisCacheStore({ client: sharedClient, prefix });
    await store.set('k', entry(1, Date.now(), 10_000, ['t']));
    await sharedClient.set(`${prefix}v:k`, 'not json', 'KEEPTTL');
    expect(await store.deleteTag('t')).toBe(1);
    expect(await sharedClient.exists(`${prefix}v:k`)).toBe(0);
  });

  it('surfaces an error reply inside the transaction', async () => {
    const prefix = uniquePrefix('cache');
    const store = new RedisCacheStore({ client: sharedClient, prefix });
    await sharedClient.set(`${prefix}t:t`, 'not a set');
    await expect(store.set('k', entry(1, Date.now(), 10_000, ['t']))).rejects.toThrow(/WRONGTYPE/);
  });

  it('closes the client only when it owns it', async () => {
    const borrowed = redisClient(shared.url);
    onTestFinished(() => borrowed.disconnect());
    await borrowed.connect();
    await new RedisCacheStore({ client: borrowed, prefix: uniquePrefix() }).close();
    expect(await borrowed.ping()).toBe('PONG');

    const owned = redisClient(shared.url);
    await owned.connect();
    const closed = once(owned, 'end');
    await new RedisCacheStore({ client: owned, prefix: uniquePrefix(), ownsClient: true }).close();
    await closed;
    expect(owned.status).toBe('end');
  });

  it('rejects an empty prefix and a client with its own keyPrefix', () => {
    const withPrefix = redisClient(shared.url, { keyPrefix: 'app:' });
    onTestFinished(() => withPrefix.disconnect());
    for (const opts of [
      { client: sharedClient, prefix: '' },
      { client: withPrefix, prefix: 'cache:' },
    ]) {
      expect(() => new RedisCacheStore(opts)).toThrow(
        expect.objectContaining({ code: 'BWK_ERR_CACHE_OPTIONS' }) as Error,
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// Redis store under faults: each test gets its own server, since it breaks it.

describe('RedisCacheStore under faults', () => {
  const servers: RedisServer[] = [];
  const server = async () => {
    const started = await startRedis();
    servers.push(started);
    return started;
  };
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('rejects (does not hang) while the server is paused, and works again after resume', async () => {
    const redis = await server();
    const client = redisClient(redis.url, { commandTimeout: 100 });
    onTestFinished(() => client.disconnect());
    await client.connect();
    const store = new RedisCacheStore({ client, prefix: uniquePrefix('cache') });
    await store.set('k', entry('v', Date.now(), 60_000, ['t']));

    await redis.pause();
    await expect(store.get('k')).rejects.toThrow('Command timed out');
    await expect(store.set('k2', entry('v2', Date.now(), 60_000, ['t']))).rejects.toThrow(
      'Command timed out',
    );
    await expect(store.deleteTag('other')).rejects.toThrow('Command timed out');
    await expect(store.clear()).rejects.toThrow('Command timed out');

    await redis.resume();
    expect((await store.get('k'))?.value).toBe('v');
  });

  it('after a crash and an empty restart, misses and then writes again through a reconnecting client', async () => {
    const redis = await server();
    const client = redisClient(redis.url);
    onTestFinished(() => client.disconnect());
    await client.connect();
    const store = new RedisCacheStore({ client, prefix: uniquePrefix('cache') });
    await store.set('k', entry('before', Date.now(), 60_000, ['t']));

    await redis.kill();
    // No offline queue in the test client: a command while disconnected fails at once.
    await expect(store.get('k')).rejects.toThrow();
    await expect(store.set('k', entry('during', Date.now()))).rejects.toThrow();

    // Not events.once: it rejects on the 'error' each refused reconnect attempt emits meanwhile.
    const ready = new Promise<void>((resolve) => client.once('ready', () => resolve()));
    await redis.restart();
    await ready;
    expect(await store.get('k')).toBeUndefined();
    expect(await store.deleteTag('t')).toBe(0);
    await store.set('k', entry('after', Date.now(), 60_000, ['t']));
    expect((await store.get('k'))?.value).toBe('after');
    expect(await store.deleteTag('t')).toBe(1);
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from 'pino';
import { CacheJournal, planReplay, type JournalRecord } from '../src/cache/journal.js';
import { MemoryCacheStore } from '../src/cache/memory.js';
import { TieredCache } from '../src/cache/tiered.js';
import type { CacheEntry, CacheStore } from '../src/cache/types.js';
import { Failover } from '../src/failover/index.js';
import { createStore } from '../src/store/index.js';
import type { Store } from '../src/store/types.js';

/** Chaos decorator for unit tests: the wrapped store fails (down) or never answers (hung). */
class FlakyStore implements CacheStore {
  readonly name = 'flaky';
  down = false;
  hung = false;
  /** While set, writes wait for it before reaching the inner store. */
  held: Promise<void> | undefined;
  readonly inner: CacheStore;
  constructor(inner: CacheStore) {
    this.inner = inner;
  }
  #gate<T>(run: () => Promise<T>): Promise<T> {
    if (this.hung) return new Promise(() => undefined);
    if (this.down) return Promise.reject(new Error('ECONNREFUSED'));
    return run();
  }
  get<T>(key: string) {
    return this.#gate(() => this.inner.get<T>(key));
  }
  set<T>(key: string, entry: CacheEntry<T>) {
    const held = this.held;
    return this.#gate(async () => {
      await held;
      return this.inner.set(key, entry);
    });
  }
  delete(keys: string[]) {
    return this.#gate(() => this.inner.delete(keys));
  }
  deleteTag(tag: string) {
    return this.#gate(() => this.inner.deleteTag(tag));
  }
  clear() {
    return this.#gate(() => this.inner.clear());
  }
  close() {
    return this.inner.close();
  }
}

let store: Store;
beforeEach(async () => {
  vi.useFakeTimers({
    now: 1_000_000,
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
  });
  store = await createStore({ sqliteFile: ':memory:' });
});
afterEach(async () => {
  vi.useRealTimers();
  await store.close();
});

/**
 * Instances sharing one L2, each with its own L1 and failover; each with its own journal, or all
 * with one journal (instances sharing one store).
 */
async function instances(n = 2, sharedJournal = false) {
  const shared = new MemoryCacheStore({ now: () => Date.now() });
  const flaky = new FlakyStore(shared);
  const list = [];
  for (let i = 0; i < n; i += 1) {
    const failover = new Failover({ name: 'redis', probe: () => flaky.get('__probe__'), failureStreakMs: 0 });
    await failover.start();
    const cache = new TieredCache({
      name: 'c',
      l1: new MemoryCacheStore({ now: () => Date.now() }),
      l2: { store: flaky, failover, journal: new CacheJournal(store.kv, sharedJournal ? 'c' : `c${i}`) },
      defaultTtlMs: 60_000,
    });
    list.push({ cache, failover });
  }
  return { shared, flaky, list };
}

async function failL2(flaky: FlakyStore, failover: Failover, cache: TieredCache) {
  flaky.down = true;
  for (let i = 0; i < 3 && failover.mode === 'primary'; i += 1) await cache.get(`probe-${i}`);
  expect(failover.mode).toBe('fallback');
}

describe('tiered cache', () => {
  it('reads through L1 then L2, and fills L1 from L2', async () => {
    const { list, shared } = await instances();
    const [a, b] = list;
    await a!.cache.set('k', { n: 1 });
    expect(await shared.get('k')).toMatchObject({ value: { n: 1 } });
    expect(await b!.cache.get('k')).toEqual({ n: 1 });
    await shared.delete(['k']);
    expect(await b!.cache.get('k')).toEqual({ n: 1 }); // now in b's L1
  });

  it('getOrSet runs the factory once for concurrent callers', async () => {
    const { list } = await instances(1);
    const cache = list[0]!.cache;
    let runs = 0;
    const factory = async () => {
      runs += 1;
      await new Promise((r) => setTimeout(r, 10));
      return 'v';
    };
    const results = Promise.all(Array.from({ length: 20 }, () => cache.getOrSet('k', factory)));
    await vi.advanceTimersByTimeAsync(10);
    expect(await results).toEqual(Array(20).fill('v'));
    expect(runs).toBe(1);
  });

  it('getOrSet answers once L1 holds the value; the L2 write goes on behind and settled() waits for it', async () => {
    const { list, shared, flaky } = await instances(2);
    const [a, b] = list;
    let release = () => undefined as void;
    flaky.held = new Promise<void>((resolve) => (release = resolve));
    expect(await a!.cache.getOrSet('k', () => 'v')).toBe('v');
    expect(await shared.get('k')).toBeUndefined(); // not yet in L2
    expect(await a!.cache.getOrSet('k', () => 'again')).toBe('v'); // L1: the factory does not run again
    let settled = false;
    const waiting = a!.cache.settled().then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toBe(false);
    // set() still resolves only once L2 has the value
    let setDone = false;
    const setting = a!.cache.set('s', 1).then(() => (setDone = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(setDone).toBe(false);
    release();
    await waiting;
    await setting;
    expect(await shared.get('k')).toMatchObject({ value: 'v' });
    expect(await b!.cache.get('k')).toBe('v');
    expect(list[0]!.failover.mode).toBe('primary');
  });

  it('a getOrSet fill that reaches neither L2 nor the journal is logged, and the caller still has its value', async () => {
    const { list, flaky } = await instances(1);
    const { cache, failover } = list[0]!;
    await failL2(flaky, failover, cache);
    const warnings: unknown[] = [];
    const logger = { warn: (...args: unknown[]) => warnings.push(args) } as unknown as Logger;
    const broken = new TieredCache({
      name: 'c',
      l1: new MemoryCacheStore(),
      l2: { store: flaky, failover, journal: new CacheJournal(store.kv, 'broken') },
      logger,
    });
    await store.close(); // the journal cannot be written any more
    expect(await broken.getOrSet('k', () => 'v')).toBe('v');
    await broken.settled();
    expect(JSON.stringify(warnings)).toContain('could not be written to L2 or the journal');
    broken.close();
    store = await createStore({ sqliteFile: ':memory:' }); // for afterEach
  });

  it('a journal replay on failback that cannot read the store is logged, never an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { list, flaky } = await instances(1);
      const { failover } = list[0]!;
      const warnings: unknown[] = [];
      const logger = {
        warn: (...args: unknown[]) => warnings.push(args),
        debug: () => undefined,
        info: () => undefined,
      } as unknown as Logger;
      const cache = new TieredCache({
        name: 'c',
        l1: new MemoryCacheStore(),
        l2: { store: flaky, failover, journal: new CacheJournal(store.kv, 'gone') },
        logger,
      });
      await failL2(flaky, failover, cache);
      await store.close(); // the store goes away at shutdown, before Redis comes back
      flaky.down = false;
      await vi.advanceTimersByTimeAsync(1000); // probes succeed → failback → replay
      expect(failover.mode).toBe('primary');
      await vi.advanceTimersByTimeAsync(10);
      expect(JSON.stringify(warnings)).toContain('cache journal replay interrupted');
      expect(unhandled).toEqual([]);
      cache.close();
    } finally {
      process.off('unhandledRejection', onUnhandled);
      store = await createStore({ sqliteFile: ':memory:' }); // for afterEach
    }
  });

  it('serves a stale value within its grace when the factory fails, and rethrows without one', async () => {
    const { list } = await instances(1);
    const cache = list[0]!.cache;
    await cache.getOrSet('k', () => 'old', { ttl: 1000, grace: 10_000 });
    vi.setSystemTime(Date.now() + 2000);
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.getOrSet('k', () => Promise.reject(new Error('db down')))).toBe('old');
    vi.setSystemTime(Date.now() + 20_000);
    await expect(cache.getOrSet('k', () => Promise.reject(new Error('db down')))).rejects.toThrow('db down');
  });

  it('invalidates groups by tag in both tiers', async () => {
    const { list, shared } = await instances(1);
    const cache = list[0]!.cache;
    await cache.set('a', 1, { tags: ['users'] });
    await cache.set('b', 2, { tags: ['users'] });
    await cache.set('c', 3, { tags: ['orders'] });
    await cache.deleteTag('users');
    expect(await cache.get('a')).toBeUndefined();
    expect(await cache.get('b')).toBeUndefined();
    expect(await cache.get('c')).toBe(3);
    expect(await shared.get('a')).toBeUndefined();
  });

  it('keeps working through an L2 outage and replays journaled writes on failback', async () => {
    const { list, flaky, shared } = await instances(1);
    const { cache, failover } = list[0]!;
    await cache.set('keep', 'v1');
    await cache.set('gone', 'x');
    await failL2(flaky, failover, cache);

    await cache.set('keep', 'v2');
    await cache.set('new', 'n');
    await cache.delete('gone');
    expect(await cache.get('keep')).toBe('v2');
    expect(await cache.get('gone')).toBeUndefined();
    expect((await store.kv.list('bulwark.cache.journal:c0')).length).toBe(3);

    flaky.down = false;
    await vi.advanceTimersByTimeAsync(1000); // probes succeed → failback → replay
    expect(failover.mode).toBe('primary');
    await cache.replay();
    expect((await shared.get('keep'))?.value).toBe('v2');
    expect((await shared.get('new'))?.value).toBe('n');
    expect(await shared.get('gone')).toBeUndefined();
    expect(await store.kv.list('bulwark.cache.journal:c0')).toEqual([]);
  });

  it('the replay never overwrites a newer value written to the shared tier after the failback', async () => {
    const { list, flaky, shared } = await instances(1);
    const { cache, failover } = list[0]!;
    await failL2(flaky, failover, cache);
    await cache.set('k', 'journaled-old');
    flaky.down = false;
    // Another instance writes a newer value before this one replays.
    await shared.set('k', {
      value: 'newer',
      expiresAt: 9e15,
      staleUntil: 9e15,
      version: Date.now() * 1000 + 10_000,
    });
    await vi.advanceTimersByTimeAsync(1000);
    expect(failover.mode).toBe('primary');
    await cache.replay();
    expect((await shared.get('k'))?.value).toBe('newer');
  });

  it('a key deleted during the outage is never read again from the stale shared tier', async () => {
    const { list, flaky, shared } = await instances(1);
    const { cache, failover } = list[0]!;
    await cache.set('k', 'secret');
    await failL2(flaky, failover, cache);
    await cache.delete('k');
    flaky.down = false;
    // Shared tier still holds the value until the replay: this instance must not read it.
    expect(await shared.get('k')).toBeDefined();
    expect(await cache.get('k')).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1000);
    await cache.replay();
    expect(await shared.get('k')).toBeUndefined();
    expect(await cache.get('k')).toBeUndefined();
  });

  it("a delete made on another instance during the outage hides this one's older copies (shared store)", async () => {
    const { list, flaky, shared } = await instances(2, true);
    const [a, b] = [list[0]!, list[1]!];
    await a.cache.set('k', 'secret');
    await a.cache.set('member', 'tagged', { tags: ['grp'] });
    expect(await b.cache.get('k')).toBe('secret'); // now in b's L1
    expect(await b.cache.get('member')).toBe('tagged');
    await failL2(flaky, a.failover, a.cache);
    await failL2(flaky, b.failover, b.cache);
    await a.cache.delete('k');
    await a.cache.deleteTag('grp');
    await vi.advanceTimersByTimeAsync(100); // b reads the pending deletes from the shared store
    expect(await b.cache.get('k')).toBeUndefined();
    expect(await b.cache.get('member')).toBeUndefined();
    await b.cache.set('k', 'rewritten'); // newer than the delete: not hidden
    expect(await b.cache.get('k')).toBe('rewritten');

    flaky.down = false;
    await vi.advanceTimersByTimeAsync(1000); // both fail back and replay the one journal
    await Promise.all([a.cache.replay(), b.cache.replay()]);
    expect((await shared.get('k'))?.value).toBe('rewritten');
    expect(await shared.get('member')).toBeUndefined();
    expect(await store.kv.list('bulwark.cache.journal:c')).toEqual([]);
    expect(await a.cache.get('k')).toBe('rewritten');
    expect(await b.cache.get('member')).toBeUndefined();
  });

  it('an instance already back on the shared tier honours deletes still journaled by one that is not', async () => {
    const { list, shared } = await instances(2, true);
    const [a, b] = [list[0]!, list[1]!];
    await a.cache.set('k', 'secret');
    expect(await b.cache.get('k')).toBe('secret');
    a.failover.setForced(true); // a is on its fallback while the shared tier is up for b
    await a.cache.delete('k');
    expect((await shared.get('k'))?.value).toBe('secret'); // not replayed yet
    await vi.advanceTimersByTimeAsync(100);
    expect(b.failover.mode).toBe('primary');
    expect(await b.cache.get('k')).toBeUndefined(); // neither from b's L1 nor from the shared tier
    a.failover.setForced(false);
    await vi.advanceTimersByTimeAsync(1000);
    await a.cache.replay();
    expect(await shared.get('k')).toBeUndefined();
    await vi.advanceTimersByTimeAsync(100);
    expect(await b.cache.get('k')).toBeUndefined();
  });

  it('a blackholed L2 costs at most the deadline per read, then nothing', async () => {
    const { list, flaky } = await instances(1);
    const { cache, failover } = list[0]!;
    await cache.set('k', 'v');
    flaky.hung = true;
    const reads = [cache.get('other1'), cache.get('other2'), cache.get('other3')];
    await vi.advanceTimersByTimeAsync(25);
    expect(await Promise.all(reads)).toEqual([undefined, undefined, undefined]);
    expect(failover.mode).toBe('fallback');
    expect(await cache.get('k')).toBe('v'); // L1 still serves
  });
});

describe('journal replay plan', () => {
  const entry = (version: number, tags?: string[]): CacheEntry => ({
    value: version,
    expiresAt: 9e15,
    staleUntil: 9e15,
    version,
    ...(tags ? { tags } : {}),
  });

  it('applies deletes first and only the newest set per key, dropping sets older than a delete', () => {
    const records: JournalRecord[] = [
      { op: 'set', key: 'a', version: 1, entry: entry(1) },
      { op: 'set', key: 'a', version: 3, entry: entry(3) },
      { op: 'delete', key: 'b', version: 5 },
      { op: 'set', key: 'b', version: 4, entry: entry(4) },
      { op: 'set', key: 'c', version: 7, entry: entry(7) },
      { op: 'delete', key: 'c', version: 6 },
      { op: 'set', key: 'd', version: 2, entry: entry(2, ['t']) },
      { op: 'deleteTag', tag: 't', version: 8 },
      { op: 'set', key: 'e', version: 9, entry: entry(9, ['t']) },
    ];
    const plan = planReplay(records);
    expect(plan.map((r) => (r.op === 'deleteTag' ? `dt:${r.tag}` : `${r.op}:${r.key}:${r.version}`))).toEqual(
      ['dt:t', 'delete:b:5', 'delete:c:6', 'set:a:3', 'set:c:7', 'set:e:9'],
    );
  });
});

describe('cache metrics', () => {
  it('counts hits and misses per tier and stale serves, visible on scrape', async () => {
    vi.useRealTimers();
    const { Registry } = await import('prom-client');
    const { CacheMetrics } = await import('../src/cache/metrics.js');
    const registry = new Registry();
    const cache = new TieredCache({
      name: 'm',
      l1: new MemoryCacheStore(),
      metrics: new CacheMetrics(registry),
    });
    new CacheMetrics(registry); // a second cache on the same registry shares the counters
    await cache.get('a');
    await cache.set('a', 1, { ttl: 1, grace: 60_000 });
    await cache.get('a');
    await new Promise((r) => setTimeout(r, 5));
    await cache.getOrSet('a', () => Promise.reject(new Error('down')));
    const text = await registry.metrics();
    expect(text).toContain('bulwark_cache_lookups_total{cache="m",tier="l1",result="miss"} 1');
    expect(text).toContain('bulwark_cache_lookups_total{cache="m",tier="l1",result="hit"} 2');
    expect(text).toContain('bulwark_cache_stale_served_total{cache="m"} 1');
    expect(await registry.metrics()).toContain(
      'bulwark_cache_lookups_total{cache="m",tier="l1",result="hit"} 2',
    );
  });
});

describe('cache journal', () => {
  it('commits records appended in one turn together, and rejects them together on failure', async () => {
    let calls = 0;
    let fail = false;
    const real = store.kv;
    const kv: typeof real = {
      get: (ns, key) => real.get(ns, key),
      getMany: (ns, keys) => real.getMany(ns, keys),
      put: (ns, key, value, opts) => real.put(ns, key, value, opts),
      delete: (ns, key) => real.delete(ns, key),
      deleteMany: (ns, keys) => real.deleteMany(ns, keys),
      list: (ns, opts) => real.list(ns, opts),
      count: (ns, opts) => real.count(ns, opts),
      putMany: (ns, entries) => {
        calls += 1;
        return fail ? Promise.reject(new Error('disk full')) : real.putMany(ns, entries);
      },
    };
    const journal = new CacheJournal(kv, 'g');
    const record = (i: number): JournalRecord => ({ op: 'delete', key: `k${i}`, version: i });
    await Promise.all(Array.from({ length: 100 }, (_, i) => journal.append(record(i))));
    expect(calls).toBe(1);
    expect((await journal.pending()).map((p) => p.record)).toEqual(
      Array.from({ length: 100 }, (_, i) => record(i)),
    );
    fail = true;
    const results = await Promise.allSettled([journal.append(record(200)), journal.append(record(201))]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toBe(2);
  });
});

describe('cache namespaces and L1 metrics', () => {
  it('a namespace prefixes its keys and clear() invalidates only it, in both tiers', async () => {
    const { list, shared } = await instances(1);
    const cache = list[0]!.cache;
    const users = cache.namespace('users');
    const orders = cache.namespace('orders');
    await users.set('1', 'ann');
    await orders.set('1', 'book');
    expect(await users.get('1')).toBe('ann');
    expect(await cache.get('users:1')).toBe('ann');
    expect((await shared.get('users:1'))?.tags).toEqual(['ns:users']);
    await users.clear();
    expect(await users.get('1')).toBeUndefined();
    expect(await shared.get('users:1')).toBeUndefined();
    expect(await orders.get('1')).toBe('book');
    expect(await users.getOrSet('2', () => 'bob')).toBe('bob');
  });

  it('exports L1 entries, bytes and evictions', async () => {
    vi.useRealTimers();
    const { Registry } = await import('prom-client');
    const { CacheMetrics } = await import('../src/cache/metrics.js');
    const registry = new Registry();
    const cache: TieredCache = new TieredCache({
      name: 'small',
      l1: new MemoryCacheStore({ maxEntries: 2, onEvict: () => cache.noteEviction() }),
      metrics: new CacheMetrics(registry),
    });
    for (const key of ['a', 'b', 'c', 'd']) await cache.set(key, key);
    const text = await registry.metrics();
    expect(text).toContain('bulwark_cache_l1_entries{cache="small"} 2');
    expect(text).toMatch(/bulwark_cache_l1_bytes\{cache="small"\} \d+/);
    expect(text).toContain('bulwark_cache_evictions_total{cache="small"} 2');
  });

  it('times shared-tier operations by operation', async () => {
    vi.useRealTimers();
    const { Registry } = await import('prom-client');
    const { CacheMetrics } = await import('../src/cache/metrics.js');
    const registry = new Registry();
    const shared = new MemoryCacheStore();
    const failover = new Failover({ name: 'redis', probe: () => shared.get('__probe__') });
    await failover.start();
    const cache = new TieredCache({
      name: 'timed',
      l1: new MemoryCacheStore(),
      l2: { store: shared, failover, journal: new CacheJournal(store.kv, 'timed') },
      metrics: new CacheMetrics(registry),
    });
    await cache.set('k', 1);
    await cache.get('missing');
    const text = await registry.metrics();
    expect(text).toContain('bulwark_cache_l2_duration_seconds_count{cache="timed",operation="write"} 1');
    expect(text).toContain('bulwark_cache_l2_duration_seconds_count{cache="timed",operation="get"} 1');
    failover.close();
  });
});

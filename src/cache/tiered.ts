import type { Logger } from 'pino';
import type { Failover, ReplayPacing } from '../failover/index.js';
import type { InvalidationBus } from './bus.js';
import { DeleteFence } from './fence.js';
import type { CacheJournal, JournalRecord } from './journal.js';
import { replayJournal, type ReplayOutcome } from './replay.js';
import { Announcer } from './announce.js';
import type { CacheEntry, CacheStore } from './types.js';
import { detachedCounters, type CacheCounters, type CacheMetrics, type Sized } from './metrics.js';

/** Options of one `set`/`getOrSet`. Times in milliseconds. */
export interface SetOptions {
  /** Freshness (default the cache's `defaultTtlMs`). */
  ttl?: number;
  /** How long past `ttl` a stale value may be served when refreshing fails (default `defaultGraceMs`). */
  grace?: number;
  /** Tags for group invalidation with `deleteTag`. */
  tags?: string[];
}

/** A namespaced view of a {@link TieredCache}; see `TieredCache.namespace()`. */
export interface CacheNamespace {
  get<T = unknown>(key: string): Promise<T | undefined>;
  set<T = unknown>(key: string, value: T, opts?: SetOptions): Promise<void>;
  delete(key: string): Promise<void>;
  getOrSet<T>(key: string, factory: () => Promise<T> | T, opts?: SetOptions): Promise<T>;
  /** Invalidates every key of the namespace, in both tiers. */
  clear(): Promise<void>;
}

/** Options of a {@link TieredCache}. */
export interface TieredCacheOptions {
  name: string;
  /** In-process tier. */
  l1: CacheStore;
  /**
   * Shared tier (Redis) behind its failover, with the durable outage journal and, optionally, the
   * pub/sub bus that keeps other instances' L1 in step. Absent on the embedded defaults.
   */
  l2?: { store: CacheStore; failover: Failover; journal: CacheJournal; bus?: InvalidationBus };
  defaultTtlMs?: number;
  defaultGraceMs?: number;
  /**
   * How often the journal's pending deletes of every instance sharing the store are read (default
   * 100 ms), so a delete made elsewhere during an outage hides this instance's older copies.
   */
  fencePollMs?: number;
  metrics?: CacheMetrics;
  logger?: Logger;
  now?: () => number;
  /** Pacing of the journal replay's steps (default: real timers and the event loop's load; tests drive it). */
  replayPacing?: ReplayPacing;
}

/**
 * The Bulwark cache: L1 in process, L2 shared (Redis) behind the failover engine.
 *
 * - Reads try L1, then L2 (its deadline bounded by the failover); an L2 hit fills L1 for the rest
 *   of the entry's life. While L2 is unavailable, reads are L1-only.
 * - Writes go to L1 and L2. A write that cannot reach L2 is journaled durably in the store and
 *   replayed on failback (deletes first, newest version wins). Until it is replayed, a journaled
 *   delete hides older copies of the key (or tag) wherever they are read from: at once on this
 *   instance, and within `fencePollMs` on every instance that shares the store.
 * - `getOrSet` runs the factory once per key at a time (single flight); when it fails, a stale value
 *   within its grace is served instead.
 */
export class TieredCache {
  readonly name: string;
  /**
   * Switch (flag `bulwark.cache`): while false, reads miss and `getOrSet` runs the factory, `set`
   * stores nothing; deletes still reach both tiers, so nothing cached before goes stale meanwhile.
   */
  enabled = true;
  readonly #l1: CacheStore;
  readonly #l2: TieredCacheOptions['l2'];
  readonly #ttl: number;
  readonly #grace: number;
  readonly #counts: CacheCounters;
  readonly #logger: Logger | undefined;
  readonly #now: () => number;
  readonly #inflight = new Map<string, Promise<unknown>>();
  /** Deletes journaled (here or on another instance) and not yet replayed into L2. */
  readonly #fence = new DeleteFence();
  readonly #poller: NodeJS.Timeout | undefined;
  #polling = false;
  #lastVersion = 0;
  #replaying: Promise<void> | undefined;
  readonly #replayPacing: ReplayPacing | undefined;
  readonly #announcer: Announcer | undefined;
  /** Shared-tier writes of `getOrSet` fills still in flight (see {@link settled}). */
  readonly #behind = new Set<Promise<boolean>>();

  constructor(opts: TieredCacheOptions) {
    this.name = opts.name;
    this.#l1 = opts.l1;
    this.#l2 = opts.l2;
    this.#ttl = opts.defaultTtlMs ?? 60_000;
    this.#grace = opts.defaultGraceMs ?? 0;
    const sized = 'size' in opts.l1 && 'bytes' in opts.l1 ? (opts.l1 as unknown as Sized) : undefined;
    this.#counts = opts.metrics?.forCache(opts.name, sized) ?? detachedCounters(opts.name);
    this.#logger = opts.logger;
    this.#now = opts.now ?? Date.now;
    this.#replayPacing = opts.replayPacing;
    this.#announcer = opts.l2?.bus === undefined ? undefined : new Announcer(opts.l2.bus);
    this.#l2?.failover.onChange((change) => {
      // In the background: a failure (the fence's read of a store gone at shutdown) is logged,
      // never an unhandled rejection, which would end the app; the journal stays for the next failback.
      if (change.to === 'primary')
        this.replay().catch((err: unknown) =>
          this.#logger?.warn(
            { cache: this.name, err },
            'cache journal replay failed; the next failback retries',
          ),
        );
    });
    const bus = this.#l2?.bus;
    bus?.onInvalidate((message) => void this.#dropLocal(message));
    // Changes announced while we were not listening were missed: distrust everything in L1.
    bus?.onResubscribed(() => this.#l1.clear());
    if (this.#l2 !== undefined) {
      this.#poller = setInterval(() => void this.refreshFence(), opts.fencePollMs ?? 100);
      this.#poller.unref();
    }
  }

  /** Stops reading the journal; the tiers themselves are closed by their owners. */
  close(): void {
    clearInterval(this.#poller);
  }

  /**
   * Reads every instance's pending (journaled, not yet replayed) deletes from the store, so entries
   * older than them are misses here too. Runs every `fencePollMs`; a failed read keeps what was known.
   */
  async refreshFence(): Promise<void> {
    const l2 = this.#l2;
    if (l2 === undefined || this.#polling) return;
    this.#polling = true;
    try {
      this.#fence.replaceShared(await l2.journal.deletes());
    } catch (error) {
      this.#logger?.debug({ cache: this.name, err: error }, 'cache: cannot read pending deletes');
    } finally {
      this.#polling = false;
    }
  }

  /**
   * False while this instance cannot hear other instances' invalidations (the pub/sub subscription
   * is down); reads then bypass L1 when L2 is up. True without a bus (single instance).
   */
  get listening(): boolean {
    return this.#l2?.bus?.subscribed ?? true;
  }

  /** Counts one L1 eviction (wire it to the L1 store's `onEvict`). */
  noteEviction(): void {
    this.#counts.evictions += 1;
  }

  /**
   * A view whose keys live under `name:` and carry the tag `ns:<name>`, so `clear()` invalidates the
   * whole namespace in both tiers (and on other instances) at once.
   */
  namespace(name: string): CacheNamespace {
    const tag = `ns:${name}`;
    const full = (key: string) => `${name}:${key}`;
    const withTag = (opts: SetOptions = {}): SetOptions => ({ ...opts, tags: [...(opts.tags ?? []), tag] });
    return {
      get: (key) => this.get(full(key)),
      set: (key, value, opts) => this.set(full(key), value, withTag(opts)),
      delete: (key) => this.delete(full(key)),
      getOrSet: (key, factory, opts) => this.getOrSet(full(key), factory, withTag(opts)),
      clear: () => this.deleteTag(tag),
    };
  }

  /** The fresh value, or undefined on a miss (stale values are not returned). */
  async get<T = unknown>(key: string): Promise<T | undefined> {
    if (!this.enabled) return undefined;
    const entry = await this.#read<T>(key);
    return entry !== undefined && entry.expiresAt > this.#now() ? entry.value : undefined;
  }

  /** Stores `value` (JSON-serialisable) in both tiers; resolves once L1 has it and L2 or the journal does. */
  async set<T = unknown>(key: string, value: T, opts: SetOptions = {}): Promise<void> {
    if (!this.enabled) return;
    const { l2 } = await this.#store(key, value, opts);
    await l2;
  }

  /**
   * Resolves once the shared-tier writes `getOrSet` left running have settled (each reached L2, or
   * the journal): before closing the Redis client, or in a test that reads L2 next.
   */
  async settled(): Promise<void> {
    while (this.#behind.size > 0) await Promise.allSettled([...this.#behind]);
  }

  /**
   * Writes L1, then issues the L2 write (or its journal entry) and hands it back unawaited. The
   * write is on the connection before anything the caller does next, so a later delete of the key
   * reaches Redis after it.
   */
  async #store<T>(key: string, value: T, opts: SetOptions): Promise<{ l2: Promise<boolean> }> {
    const entry = this.#entry(value, opts);
    await this.#l1.set(key, entry);
    const l2 = this.#writeL2(
      { op: 'set', key, version: entry.version, entry },
      (store) => store.set(key, entry),
      {
        keys: [key],
      },
    );
    return { l2 };
  }

  /**
   * Empties this process's L1 only (L2 and other instances keep theirs): memory given back under
   * pressure, at the price of L1 misses until it fills again. Resolves with the entries dropped
   * (when L1 counts them).
   */
  async dropLocal(): Promise<number | undefined> {
    const size = 'size' in this.#l1 ? (this.#l1 as unknown as Sized).size : undefined;
    await this.#l1.clear();
    return size;
  }

  /** Removes the key from both tiers (journaled if L2 is unreachable). */
  async delete(key: string): Promise<void> {
    await this.#l1.delete([key]);
    const record: JournalRecord = { op: 'delete', key, version: this.#version() };
    const reached = await this.#writeL2(record, (store) => store.delete([key]).then(() => undefined), {
      keys: [key],
    });
    if (!reached) this.#fence.add(record);
  }

  /** Removes every key carrying `tag` from both tiers. */
  async deleteTag(tag: string): Promise<void> {
    await this.#l1.deleteTag(tag);
    const record: JournalRecord = { op: 'deleteTag', tag, version: this.#version() };
    const reached = await this.#writeL2(record, (store) => store.deleteTag(tag).then(() => undefined), {
      tag,
    });
    if (!reached) this.#fence.add(record);
  }

  /**
   * The fresh value, or the factory's result (stored with `opts`). Concurrent callers for one key
   * share one factory run. If the factory throws and a stale value within its grace exists, the
   * stale value is returned (and counted); otherwise the factory's error reaches the caller.
   */
  async getOrSet<T>(key: string, factory: () => Promise<T> | T, opts: SetOptions = {}): Promise<T> {
    if (!this.enabled) return factory();
    const entry = await this.#read<T>(key);
    const now = this.#now();
    if (entry !== undefined && entry.expiresAt > now) return entry.value;
    const running = this.#inflight.get(key) as Promise<T> | undefined;
    if (running !== undefined) return running;
    const run = (async () => {
      try {
        const value = await factory();
        // The caller has its value once L1 holds it; the shared tier's write (a SET and its
        // announcement, or the journal) goes on behind. Awaited, each miss refilling an emptied Redis
        // took three round trips instead of one (issue 18: the failover benchmark's after window).
        if (this.enabled) this.#leaveBehind((await this.#store(key, value, opts)).l2);
        return value;
      } catch (error) {
        if (entry !== undefined && entry.staleUntil > this.#now()) {
          this.#counts.stale += 1;
          this.#logger?.warn(
            { cache: this.name, key, err: error },
            'cache factory failed: serving a stale value',
          );
          return entry.value;
        }
        throw error;
      } finally {
        this.#inflight.delete(key);
      }
    })();
    this.#inflight.set(key, run);
    return run;
  }

  /**
   * Applies the journal of writes made while L2 was unreachable. Runs on every failback; safe to
   * call any time (concurrent calls share one run). Records are removed only once applied
   * ({@link replayJournal}: a step at a time).
   */
  replay(): Promise<void> {
    this.#replaying ??= this.#replay().finally(() => {
      this.#replaying = undefined;
    });
    return this.#replaying;
  }

  async #replay(): Promise<void> {
    const l2 = this.#l2;
    if (l2 === undefined) return;
    let outcome: ReplayOutcome;
    try {
      outcome = await replayJournal(l2.journal, {
        store: l2.store,
        bus: l2.bus,
        now: this.#now,
        pacing: this.#replayPacing,
      });
    } catch (error) {
      // L2 (or the store) failed mid-replay: what was not applied stays journaled for the next
      // failback.
      this.#logger?.warn({ cache: this.name, err: error }, 'cache journal replay interrupted');
      return;
    }
    if (outcome.records === 0) return;
    this.#fence.forget(outcome.deletedUpTo);
    await this.refreshFence();
    this.#logger?.info(
      { cache: this.name, records: outcome.records, applied: outcome.applied },
      'cache journal replayed',
    );
  }

  async #dropLocal(message: { keys?: string[]; tag?: string }): Promise<void> {
    if (message.keys !== undefined) await this.#l1.delete(message.keys);
    if (message.tag !== undefined) await this.#l1.deleteTag(message.tag);
  }

  /** L1, then L2 (a hit fills L1); an entry older than a pending delete of it is a miss. */
  async #read<T>(key: string): Promise<CacheEntry<T> | undefined> {
    const l2 = this.#l2;
    // Deaf to other instances' changes while L2 is up: L1 cannot be trusted, read the shared tier.
    const deaf = l2?.bus !== undefined && !l2.bus.subscribed && l2.failover.mode === 'primary';
    let local = deaf ? undefined : await this.#l1.get<T>(key);
    if (local !== undefined && !this.#fence.empty && this.#fence.hides(key, local)) {
      await this.#l1.delete([key]);
      local = undefined;
    }
    if (local !== undefined) {
      this.#counts.l1Hit += 1;
      return local;
    }
    this.#counts.l1Miss += 1;
    if (l2 === undefined) return undefined;
    const started = performance.now();
    const shared = await l2.failover.execute(
      () => l2.store.get<T>(key),
      () => undefined,
    );
    this.#counts.observeL2('get', (performance.now() - started) / 1000);
    if (shared === undefined || (!this.#fence.empty && this.#fence.hides(key, shared))) {
      this.#counts.l2Miss += 1;
      return undefined;
    }
    this.#counts.l2Hit += 1;
    await this.#l1.set(key, shared);
    return shared;
  }

  /**
   * Writes to L2 and announces the change to other instances, or journals the write when either
   * fails; resolves true when L2 itself took it.
   */
  async #writeL2(
    record: JournalRecord,
    write: (store: CacheStore) => Promise<void>,
    announce: { keys?: string[]; tag?: string },
  ): Promise<boolean> {
    const l2 = this.#l2;
    if (l2 === undefined) return true;
    const started = performance.now();
    const reached = await l2.failover.execute(
      async () => {
        await write(l2.store);
        await this.#announcer?.announce(announce);
        return true;
      },
      async () => {
        await l2.journal.append(record);
        return false;
      },
    );
    this.#counts.observeL2('write', (performance.now() - started) / 1000);
    return reached;
  }

  #leaveBehind(write: Promise<boolean>): void {
    this.#behind.add(write);
    write
      .catch((error: unknown) =>
        this.#logger?.warn(
          { cache: this.name, err: error },
          'cache: a value could not be written to L2 or the journal',
        ),
      )
      .finally(() => this.#behind.delete(write));
  }

  #entry<T>(value: T, opts: SetOptions): CacheEntry<T> {
    const now = this.#now();
    const ttl = opts.ttl ?? this.#ttl;
    const entry: CacheEntry<T> = {
      value,
      expiresAt: now + ttl,
      staleUntil: now + ttl + (opts.grace ?? this.#grace),
      version: this.#version(),
    };
    if (opts.tags !== undefined && opts.tags.length > 0) entry.tags = opts.tags;
    return entry;
  }

  /** Strictly increasing per process; the wall clock in µs so versions compare across instances. */
  #version(): number {
    this.#lastVersion = Math.max(this.#lastVersion + 1, this.#now() * 1000);
    return this.#lastVersion;
  }
}

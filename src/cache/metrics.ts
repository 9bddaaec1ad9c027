import { Counter, Gauge, type Registry } from 'prom-client';

/** Plain per-cache counts, incremented on the hot path and read when `/metrics` is scraped. */
export interface CacheCounters {
  readonly cache: string;
  l1Hit: number;
  l1Miss: number;
  l2Hit: number;
  l2Miss: number;
  stale: number;
  /** Entries pushed out of L1 by its bounds. */
  evictions: number;
}

/** Something with a current size, such as a `MemoryCacheStore`. */
export interface Sized {
  readonly size: number;
  readonly bytes: number;
}

interface Tracked {
  counters: CacheCounters;
  /** Values already handed to prom-client. */
  reported: Omit<CacheCounters, 'cache'>;
  l1: Sized | undefined;
}

const tracked = new WeakMap<Registry, Tracked[]>();

const LOOKUPS = [
  ['l1Hit', 'l1', 'hit'],
  ['l1Miss', 'l1', 'miss'],
  ['l2Hit', 'l2', 'hit'],
  ['l2Miss', 'l2', 'miss'],
] as const;

/**
 * Cache metrics on a Bulwark registry: `bulwark_cache_lookups_total{cache,tier,result}`,
 * `bulwark_cache_stale_served_total{cache}`, `bulwark_cache_evictions_total{cache}` and the L1 size
 * gauges `bulwark_cache_l1_entries` / `bulwark_cache_l1_bytes`. Each cache increments plain numbers; prom-client
 * gets the deltas when `/metrics` is scraped. A prom-client `inc()` with a labels object costs
 * ~0.4 µs, about as much as the whole L1 hit it would count.
 */
export class CacheMetrics {
  readonly #list: Tracked[];

  constructor(registry: Registry) {
    let list = tracked.get(registry);
    if (list === undefined) {
      const all: Tracked[] = [];
      list = all;
      tracked.set(registry, all);
      const lookups = new Counter({
        name: 'bulwark_cache_lookups_total',
        help: 'Cache lookups by cache, tier (l1|l2) and result (hit|miss).',
        labelNames: ['cache', 'tier', 'result'],
        registers: [registry],
        collect: () => sync(),
      });
      const evictions = new Counter({
        name: 'bulwark_cache_evictions_total',
        help: 'Entries pushed out of the in-process tier by its entry or byte bound, by cache.',
        labelNames: ['cache'],
        registers: [registry],
        collect: () => sync(),
      });
      new Gauge({
        name: 'bulwark_cache_l1_entries',
        help: 'Entries held in the in-process tier, by cache.',
        labelNames: ['cache'],
        registers: [registry],
        collect() {
          for (const { counters, l1 } of all)
            if (l1 !== undefined) this.set({ cache: counters.cache }, l1.size);
        },
      });
      new Gauge({
        name: 'bulwark_cache_l1_bytes',
        help: 'Approximate bytes (JSON) held in the in-process tier, by cache.',
        labelNames: ['cache'],
        registers: [registry],
        collect() {
          for (const { counters, l1 } of all)
            if (l1 !== undefined) this.set({ cache: counters.cache }, l1.bytes);
        },
      });
      const stale = new Counter({
        name: 'bulwark_cache_stale_served_total',
        help: 'Stale values served because refreshing them failed, by cache.',
        labelNames: ['cache'],
        registers: [registry],
        collect: () => sync(),
      });
      // Hands every cache's new counts to prom-client; either counter's scrape triggers it.
      const sync = (): void => {
        for (const { counters, reported } of all) {
          for (const [field, tier, result] of LOOKUPS) {
            const delta = counters[field] - reported[field];
            if (delta > 0) lookups.inc({ cache: counters.cache, tier, result }, delta);
            reported[field] = counters[field];
          }
          const staleDelta = counters.stale - reported.stale;
          if (staleDelta > 0) stale.inc({ cache: counters.cache }, staleDelta);
          reported.stale = counters.stale;
          const evicted = counters.evictions - reported.evictions;
          if (evicted > 0) evictions.inc({ cache: counters.cache }, evicted);
          reported.evictions = counters.evictions;
        }
      };
    }
    this.#list = list;
  }

  /** The counters of one cache, registered for scraping; `l1` feeds the size gauges. */
  forCache(cache: string, l1?: Sized): CacheCounters {
    const counters: CacheCounters = {
      cache,
      l1Hit: 0,
      l1Miss: 0,
      l2Hit: 0,
      l2Miss: 0,
      stale: 0,
      evictions: 0,
    };
    this.#list.push({
      counters,
      reported: { l1Hit: 0, l1Miss: 0, l2Hit: 0, l2Miss: 0, stale: 0, evictions: 0 },
      l1,
    });
    return counters;
  }
}

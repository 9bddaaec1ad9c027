import { Counter, type Registry } from 'prom-client';

/** Cache counters on a Bulwark registry, shared by every cache of that registry. */
export class CacheMetrics {
  readonly #operations: Counter<'cache' | 'tier' | 'result'>;
  readonly #stale: Counter<'cache'>;

  constructor(registry: Registry) {
    this.#operations =
      (registry.getSingleMetric('bulwark_cache_lookups_total') as
        Counter<'cache' | 'tier' | 'result'> | undefined) ??
      new Counter({
        name: 'bulwark_cache_lookups_total',
        help: 'Cache lookups by cache, tier (l1|l2) and result (hit|miss).',
        labelNames: ['cache', 'tier', 'result'],
        registers: [registry],
      });
    this.#stale =
      (registry.getSingleMetric('bulwark_cache_stale_served_total') as Counter<'cache'> | undefined) ??
      new Counter({
        name: 'bulwark_cache_stale_served_total',
        help: 'Stale values served because refreshing them failed, by cache.',
        labelNames: ['cache'],
        registers: [registry],
      });
  }

  hit(cache: string, tier: 'l1' | 'l2'): void {
    this.#operations.inc({ cache, tier, result: 'hit' });
  }

  miss(cache: string, tier: 'l1' | 'l2'): void {
    this.#operations.inc({ cache, tier, result: 'miss' });
  }

  staleServed(cache: string): void {
    this.#stale.inc({ cache });
  }
}

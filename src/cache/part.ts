import type { Part } from '../parts/index.js';
import type { RedisDependency } from '../redis/connection.js';
import type { Store } from '../store/types.js';
import type { InvalidationBus } from './bus.js';
import type { TieredCache } from './tiered.js';

/** Options of the `default` cache (`createBulwark({ cache })`). */
export interface CachePartOptions {
  /** Most entries its in-process tier (L1) holds, least recently used evicted first. Default 10 000. */
  maxEntries?: number | undefined;
  /** Most bytes L1 holds (each entry's JSON, UTF-8). Default 64 MiB. */
  maxBytes?: number | undefined;
}

/**
 * The `default` cache: L1 in process; with Redis, L2 on Redis behind its failover, a journal of the
 * writes made during an outage (in the store, replayed on failback) and cross-instance L1
 * invalidation on a pub/sub bus. Follows the flag `bulwark.cache`.
 */
export function cachePart(
  options: CachePartOptions = {},
): Part<'cache', TieredCache, { store: Store; redis: RedisDependency | undefined }> {
  let bus: InvalidationBus | undefined;
  let removeBacklog: (() => void) | undefined;
  return {
    name: 'cache',
    needs: ['store', 'redis'],
    checks: ['cache:tier'],
    flags: () => [
      {
        key: 'bulwark.cache',
        description: 'The cache. Off: reads miss, sets store nothing, deletes still apply.',
      },
    ],
    async start({ store, redis }, { metrics, health, logger, instanceId }) {
      // The implementation loads when the part starts: a command that needs no cache never loads it.
      const [
        { InvalidationBus },
        { CacheJournal },
        { MemoryCacheStore },
        { CacheMetrics },
        { RedisCacheStore },
        { TieredCache },
      ] = await Promise.all([
        import('./bus.js'),
        import('./journal.js'),
        import('./memory.js'),
        import('./metrics.js'),
        import('./redis.js'),
        import('./tiered.js'),
      ]);
      if (redis === undefined) {
        health.register({
          name: 'cache:tier',
          componentType: 'component',
          critical: false,
          intervalMs: 60_000,
          check: () => ({
            status: 'pass',
            observedValue: 'embedded',
            output: 'L1 only: REDIS_URL is not set',
          }),
        });
      } else {
        bus = new InvalidationBus({
          client: redis.client,
          channel: 'bulwark:cache:invalidate:default',
          instanceId,
          logger,
        });
        bus.start();
      }
      const l2 =
        redis === undefined
          ? undefined
          : {
              store: new RedisCacheStore({ client: redis.client, prefix: 'bulwark:cache:' }),
              failover: redis.failover,
              journal: new CacheJournal(store.kv, 'default'),
              ...(bus === undefined ? {} : { bus }),
            };
      if (l2 !== undefined)
        removeBacklog = l2.failover.addBacklog({
          name: 'cache journal (default)',
          pending: () => l2.journal.count(),
        });
      const cache: TieredCache = new TieredCache({
        name: 'default',
        // Evictions are counted once the cache exists (the callback only runs on later writes).
        l1: new MemoryCacheStore({
          name: 'l1',
          ...(options.maxEntries === undefined ? {} : { maxEntries: options.maxEntries }),
          ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
          onEvict: () => cache.noteEviction(),
        }),
        ...(l2 === undefined ? {} : { l2 }),
        metrics: new CacheMetrics(metrics.registry),
        logger,
      });
      return cache;
    },
    async close(cache) {
      removeBacklog?.();
      await cache.settled(); // getOrSet's writes still behind, before the Redis client and the store close
      cache.close();
      bus?.close();
    },
    follow: (cache) => ({ 'bulwark.cache': (on) => (cache.enabled = on) }),
  };
}

// The cache replays its outage journal into Redis by itself when the failover returns to primary:
// nobody calls replay(). Real redis-server from the harness, real Bulwark instances.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CacheJournal } from '../src/cache/journal.js';
import { RedisCacheStore } from '../src/cache/redis.js';
import { createBulwark, type Bulwark } from '../src/runtime/create.js';
import { redisClient, startRedis, type RedisServer } from './helpers/redis.js';
import { until } from './helpers/wait.js';

// Generous: a loaded 2-core machine can take seconds to see Redis again and replay.
const FAILBACK_TIMEOUT_MS = 30_000;

describe('automatic journal replay on failback (real redis-server)', () => {
  let redis: RedisServer;
  const opened: Bulwark[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    for (const bulwark of opened.splice(0)) await bulwark.close();
  });
  afterAll(async () => {
    await redis.stop();
  });

  async function instance(): Promise<Bulwark> {
    const bulwark = await createBulwark({
      env: {},
      redisUrl: redis.url,
      store: { sqliteFile: ':memory:' },
      logLevel: 'silent',
      defaultMetrics: false,
    });
    opened.push(bulwark);
    return bulwark;
  }

  /** L2 as another instance sees it: Redis itself, through the same layout the cache writes. */
  async function sharedTier<T>(keys: string[]): Promise<(T | undefined)[]> {
    const client = redisClient(redis.url);
    try {
      await client.connect();
      const l2 = new RedisCacheStore({ client, prefix: 'bulwark:cache:' });
      return await Promise.all(keys.map(async (key) => (await l2.get<T>(key))?.value));
    } finally {
      client.disconnect();
    }
  }

  // pause: Redis keeps its data, so a delete made during the outage must be replayed to take effect;
  // kill: Redis comes back empty, so a set made during the outage must be replayed to be there at all.
  for (const outage of ['pause', 'kill'] as const) {
    it(
      `${outage}: writes made during the outage reach Redis after it returns, without calling replay()`,
      { timeout: 120_000 },
      async () => {
        const bulwark = await instance();
        const failover = bulwark.dependencies['redis']!;
        const journal = new CacheJournal(bulwark.store.kv, 'default');
        expect(failover.mode).toBe('primary');
        await bulwark.cache.set('kept', 'before');
        await bulwark.cache.set('deleted', 'before');
        await bulwark.cache.set('updated', 'before');
        expect(await sharedTier(['kept', 'deleted', 'updated'])).toEqual(['before', 'before', 'before']);

        if (outage === 'pause') await redis.pause();
        else await redis.kill();
        try {
          // Only once the failover is on the fallback do writes go to the journal and never to Redis:
          // a write sent to a paused server would be applied on resume by Redis itself.
          await until(() => failover.mode === 'fallback', FAILBACK_TIMEOUT_MS, 'failover on the fallback');
          await bulwark.cache.delete('deleted');
          await bulwark.cache.set('updated', 'during');
          await bulwark.cache.set('added', 'during');
          // Contained, not equal: on a loaded machine a write made before the outage can outlive the
          // failover's deadline and be journaled too (Redis applies it anyway).
          expect(
            (await journal.pending()).map(({ record }) => [
              record.op,
              'key' in record ? record.key : record.tag,
            ]),
          ).toEqual(
            expect.arrayContaining([
              ['delete', 'deleted'],
              ['set', 'updated'],
              ['set', 'added'],
            ]),
          );
        } finally {
          if (outage === 'pause') await redis.resume();
          else await redis.restart();
        }

        await until(
          async () => failover.mode === 'primary' && (await journal.pending()).length === 0,
          FAILBACK_TIMEOUT_MS,
          'back on primary with the journal replayed',
        );
        expect(await sharedTier(['deleted', 'updated', 'added'])).toEqual([undefined, 'during', 'during']);
        // What the outage did not touch is still there after a pause. (Not asserted after a kill: the
        // server comes back empty, unless that write too was journaled by a late reply, see above.)
        if (outage === 'pause') expect(await sharedTier(['kept'])).toEqual(['before']);
        // And a fresh instance (empty L1, its own store) reads the outage's writes from Redis.
        const other = await instance();
        expect(await other.cache.get('deleted')).toBeUndefined();
        expect(await other.cache.get('updated')).toBe('during');
        expect(await other.cache.get('added')).toBe('during');
      },
    );
  }
});

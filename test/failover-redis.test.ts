import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logging/index.js';
import { connectRedis, type RedisDependency } from '../src/redis/connection.js';
import { startRedis, type RedisServer } from './helpers/redis.js';

describe('failover deadline on a starved event loop (real redis-server)', () => {
  let redis: RedisServer;
  let dependency: RedisDependency;
  beforeAll(async () => {
    redis = await startRedis();
    dependency = await connectRedis(redis.url, createLogger({ level: 'silent' }));
  });
  afterAll(async () => {
    dependency.close();
    await redis.stop();
  });

  it('a reply that arrived while the loop was blocked past the deadline counts as a success', async () => {
    const { client, failover } = dependency;
    expect(failover.mode).toBe('primary');
    await client.set('k', 'v');
    for (let i = 0; i < 5; i += 1) {
      const result = failover.execute(
        () => client.get('k'),
        () => 'fallback',
      );
      // Block the loop past the 25 ms deadline; Redis answers meanwhile (the reply waits in the socket).
      const until = Date.now() + 40;
      while (Date.now() < until) {
        // busy
      }
      expect(await result).toBe('v');
    }
    expect(failover.mode).toBe('primary');
  });
});

// While Redis is up the limit is global: 4 instances count in one Redis counter and together admit
// exactly `limit`, and a client that reaches one instance only gets the whole limit there. The
// per-instance share (limit / live instances) is for outages only (ratelimit-outage.test.ts).
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { isBulwarkError } from '../src/errors/index.js';
import { Failover } from '../src/failover/index.js';
import { createRateLimiter } from '../src/ratelimit/limiter.js';
import type { RateLimiter } from '../src/ratelimit/types.js';
import { redisClient, startRedis, uniquePrefix, type RedisServer } from './helpers/redis.js';

const LIMIT = 100;
// One window for the whole test: the clock does not move.
const frozen = () => 1_700_000_000_000;

describe('rate limit with Redis up: global across instances (real redis-server)', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  /** 4 limiters on one Redis prefix that have all learned, from heartbeats, that 4 are live. */
  async function fleet(): Promise<{ limiter: RateLimiter; failover: Failover }[]> {
    const prefix = uniquePrefix('rl-share');
    const instances = await Promise.all(
      [1, 2, 3, 4].map(async (i) => {
        const client = redisClient(redis.url);
        await client.connect();
        // A deadline far above any Redis reply on a loaded machine: this test is about counting on
        // Redis, and a reply late enough to fall back to memory would be a different scenario.
        const failover = new Failover({
          name: 'redis',
          probe: () => client.ping(),
          isFailure: (error) => !isBulwarkError(error),
          deadlineMs: 5_000,
        });
        await failover.start();
        const limiter = createRateLimiter({
          policies: [{ name: 'api', limit: LIMIT, windowMs: 60_000 }],
          redis: { client, failover },
          prefix,
          instanceId: `i${i}`,
          now: frozen,
        });
        onTestFinished(async () => {
          await limiter.close();
          failover.close();
          client.disconnect();
        });
        return { limiter, failover };
      }),
    );
    // Two rounds: every instance has beaten before any reads the count.
    for (let round = 0; round < 2; round++) await Promise.all(instances.map((f) => f.limiter.heartbeat()));
    expect(instances.map((f) => f.limiter.liveInstances)).toEqual([4, 4, 4, 4]);
    expect(instances.map((f) => f.failover.mode)).toEqual(['primary', 'primary', 'primary', 'primary']);
    return instances;
  }

  it('4 instances together admit exactly the limit (not limit / 4), counted on Redis', async () => {
    const instances = await fleet();
    const admitted = [0, 0, 0, 0];
    // Round-robin over the instances, twice the limit in all.
    for (let n = 0; n < 2 * LIMIT; n++) {
      const i = n % 4;
      const decision = await instances[i]!.limiter.consume('client-1');
      expect(decision.source).toBe('redis');
      if (decision.allowed) admitted[i]! += 1;
    }
    expect(admitted.reduce((a, b) => a + b, 0)).toBe(LIMIT);
    // The first LIMIT calls are the admitted ones, a quarter on each instance.
    expect(admitted).toEqual([LIMIT / 4, LIMIT / 4, LIMIT / 4, LIMIT / 4]);
  });

  it('a client reaching one instance only gets the whole limit there while 4 are live', async () => {
    const [first] = await fleet();
    const decisions = [];
    for (let n = 0; n < LIMIT + 5; n++) decisions.push(await first!.limiter.consume('client-2'));
    expect(decisions.every((d) => d.source === 'redis')).toBe(true);
    expect(decisions.filter((d) => d.allowed)).toHaveLength(LIMIT);
    expect(decisions.findIndex((d) => !d.allowed)).toBe(LIMIT);
    expect(decisions[LIMIT - 1]).toMatchObject({ allowed: true, limit: LIMIT, remaining: 0 });
  });
});

// The rate limiter under real Redis faults (kill, SIGSTOP, restart), and the outage share: N
// instances together admit about the limit while Redis is down, where rate-limiter-flexible's own
// insurance limiter admits N × the limit. Real redis-server processes from the harness.
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { isBulwarkError } from '../src/errors/index.js';
import { Failover } from '../src/failover/index.js';
import { createRateLimiter } from '../src/ratelimit/limiter.js';
import type { RateLimitDecision, RateLimiter, RateLimitPolicy } from '../src/ratelimit/types.js';
import { redisClient, startRedis, uniquePrefix, type RedisServer } from './helpers/redis.js';
import { until } from './helpers/wait.js';

const DEADLINE_MS = 25;
// A call stuck on Redis would wait for the client's command timeout, set long here: being answered
// well within it can only be the failover's deadline at work. How fast it answers is a benchmark's
// figure, not a test's.
const COMMAND_TIMEOUT_MS = 60_000;
const ANSWERED_WITHIN_MS = COMMAND_TIMEOUT_MS / 10;

interface Instance {
  limiter: RateLimiter;
  failover: Failover;
  client: Redis;
}

/** One service instance: its own client, failover and limiter, all closed when the test ends. */
async function instance(
  url: string,
  prefix: string,
  policies: RateLimitPolicy[],
  opts: { instanceId?: string; now?: () => number; heartbeatIntervalMs?: number } = {},
): Promise<Instance> {
  const client = redisClient(url, { commandTimeout: COMMAND_TIMEOUT_MS });
  await client.connect();
  const failover = new Failover({
    name: 'redis',
    probe: () => client.ping(),
    isFailure: (error) => !isBulwarkError(error),
    deadlineMs: DEADLINE_MS,
    probeIntervalMs: 50,
    probeTimeoutMs: 100,
  });
  await failover.start();
  const limiter = createRateLimiter({ policies, redis: { client, failover }, prefix, ...opts });
  onTestFinished(async () => {
    await limiter.close();
    failover.close();
    client.disconnect();
  });
  return { limiter, failover, client };
}

/** `n` consumes one after the other, each timed: no call may hang past the failover's bound. */
async function consumeTimed(limiter: RateLimiter, key: string, n: number) {
  const decisions: RateLimitDecision[] = [];
  let slowestMs = 0;
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    decisions.push(await limiter.consume(key));
    slowestMs = Math.max(slowestMs, performance.now() - started);
  }
  return { decisions, slowestMs, allowed: decisions.filter((d) => d.allowed).length };
}

const frozen = () => 1_700_000_000_000;

describe('rate limiter under Redis faults (real redis-server)', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('kill: keeps answering from memory, never throws or hangs; restart: back on Redis', async () => {
    const policies = [{ name: 'p', limit: 1000, windowMs: 60_000 }];
    const { limiter, failover } = await instance(redis.url, uniquePrefix('rl'), policies, { now: frozen });
    expect((await limiter.consume('k')).source).toBe('redis');

    await redis.kill();
    const outage = await consumeTimed(limiter, 'k', 50);
    expect(outage.allowed).toBe(50);
    expect(outage.decisions.at(-1)?.source).toBe('memory');
    // The breaker opens once nothing has succeeded for its streak (50 ms); every call meanwhile was
    // already answered from memory.
    await until(
      async () => {
        expect((await limiter.consume('k')).source).toBe('memory');
        return failover.mode === 'fallback';
      },
      10_000,
      'the breaker opens',
    );
    expect(outage.slowestMs).toBeLessThan(ANSWERED_WITHIN_MS);

    await redis.restart();
    await until(() => failover.mode === 'primary', 5000);
    // Fresh server, fresh count: the outage's memory counts are not carried over.
    expect(await limiter.consume('k')).toMatchObject({ source: 'redis', remaining: 999 });
  });

  it('the Redis kill switch moves counting to the memory share, which carries on from the count, and back', async () => {
    const policies = [{ name: 'p', limit: 10, windowMs: 60_000 }];
    const { limiter, failover } = await instance(redis.url, uniquePrefix('rl'), policies, { now: frozen });
    expect(await limiter.consume('k')).toMatchObject({ source: 'redis', remaining: 9 });
    expect(limiter.consumeNow('k')).toBeUndefined(); // Redis is up: the decision needs a round trip
    failover.setForced(true);
    // What Redis counted on this instance in the window still counts: not a fresh 10.
    expect(await limiter.consume('k')).toMatchObject({ source: 'memory', remaining: 8 });
    // On the fallback side the decision needs no I/O: made at once, on the same memory share.
    expect(limiter.consumeNow('k')).toMatchObject({ source: 'memory', remaining: 7 });
    failover.setForced(false);
    await until(() => failover.mode === 'primary', 5000);
    expect(limiter.consumeNow('k')).toBeUndefined();
    // Counts do not move back: Redis resumes from its own.
    expect(await limiter.consume('k')).toMatchObject({ source: 'redis', remaining: 8 });
  });

  it('a key Redis has refused in the window stays refused when a deadline miss answers from memory', async () => {
    const policies = [{ name: 'p', limit: 3, windowMs: 60_000 }];
    const { limiter, failover } = await instance(redis.url, uniquePrefix('rl'), policies, { now: frozen });
    const onRedis = await consumeTimed(limiter, 'k', 4);
    expect(onRedis.decisions.map((d) => [d.source, d.allowed])).toEqual([
      ['redis', true],
      ['redis', true],
      ['redis', true],
      ['redis', false],
    ]);
    await redis.pause(); // the next call misses the deadline and is answered from memory
    try {
      expect(await limiter.consume('k')).toMatchObject({ source: 'memory', allowed: false });
      expect(await limiter.consume('other')).toMatchObject({ source: 'memory', allowed: true });
    } finally {
      await redis.resume();
    }
    await until(() => failover.mode === 'primary', 5000);
  });

  it('pause (blackhole): each call bounded by the deadline, from memory; resume: back on Redis', async () => {
    const policies = [{ name: 'p', limit: 1000, windowMs: 60_000 }];
    const { limiter, failover } = await instance(redis.url, uniquePrefix('rl'), policies, { now: frozen });
    expect((await limiter.consume('k')).source).toBe('redis');

    await redis.pause();
    try {
      const outage = await consumeTimed(limiter, 'k', 30);
      expect(outage.allowed).toBe(30);
      expect(outage.decisions.every((d) => d.source === 'memory')).toBe(true);
      expect(failover.mode).toBe('fallback');
      expect(outage.slowestMs).toBeLessThan(ANSWERED_WITHIN_MS);
      expect(await limiter.heartbeat()).toBe(1);
    } finally {
      await redis.resume();
    }
    await until(() => failover.mode === 'primary', 5000);
    const back = await limiter.consume('k');
    expect(back.source).toBe('redis');
    // The calls that timed out during the pause may still have been applied by Redis afterwards.
    expect(back.remaining).toBeLessThanOrEqual(998);
  });

  it('4 instances learn liveInstances = 4 and with Redis killed admit ≤ 1.1 × limit (the peer: 4 ×)', async () => {
    const limit = 100;
    const policies = [{ name: 'api', limit, windowMs: 60_000 }];
    const prefix = uniquePrefix('rl');
    const fleet = await Promise.all(
      [1, 2, 3, 4].map((i) => instance(redis.url, prefix, policies, { instanceId: `i${i}`, now: frozen })),
    );
    // Two rounds: every instance has beaten before any counts.
    for (let round = 0; round < 2; round++) await Promise.all(fleet.map((f) => f.limiter.heartbeat()));
    expect(fleet.map((f) => f.limiter.liveInstances)).toEqual([4, 4, 4, 4]);

    // Today's peer: rate-limiter-flexible on Redis with its in-memory insurance limiter, per instance.
    const peers = fleet.map(
      (f) =>
        new RateLimiterRedis({
          storeClient: f.client,
          points: limit,
          duration: 60,
          keyPrefix: `${prefix}peer`,
          rejectIfRedisNotReady: true,
          insuranceLimiter: new RateLimiterMemory({ points: limit, duration: 60 }),
        }),
    );

    await redis.kill();
    let admitted = 0;
    let peerAdmitted = 0;
    for (const [i, f] of fleet.entries()) {
      const run = await consumeTimed(f.limiter, 'client-1', 2 * limit);
      expect(run.decisions.at(-1)?.source).toBe('memory');
      admitted += run.allowed;
      for (let n = 0; n < 2 * limit; n++) {
        peerAdmitted += await peers[i]!.consume('client-1').then(
          () => 1,
          () => 0,
        );
      }
    }
    // The last known count survives the outage.
    expect(await fleet[0]!.limiter.heartbeat()).toBe(4);
    console.log(`outage, 4 instances, limit ${limit}: bulwark admitted ${admitted}, peer ${peerAdmitted}`);
    expect(admitted).toBeLessThanOrEqual(1.1 * limit);
    expect(admitted).toBeGreaterThanOrEqual(limit);
    expect(peerAdmitted).toBe(4 * limit);

    // An empty Redis refills the live set one beat at a time: nobody falls back to seeing 1.
    await redis.restart();
    await until(() => fleet.every((f) => f.failover.mode === 'primary'), 5000);
    await Promise.all(fleet.map((f) => f.limiter.heartbeat()));
    expect(fleet.map((f) => f.limiter.liveInstances)).toEqual([4, 4, 4, 4]);
  });

  it('an instance that leaves is dropped from the live set a TTL later; keys carry a TTL', async () => {
    const prefix = uniquePrefix('rl');
    const policies = [{ name: 'p', limit: 5, windowMs: 300 }];
    const fleet = await Promise.all(
      ['a', 'b', 'c'].map((id) =>
        instance(redis.url, prefix, policies, { instanceId: id, heartbeatIntervalMs: 100 }),
      ),
    );
    for (let round = 0; round < 2; round++) await Promise.all(fleet.map((f) => f.limiter.heartbeat()));
    expect(fleet[0]!.limiter.liveInstances).toBe(3);
    await fleet[2]!.limiter.close();
    // Held for one TTL (3 × 100 ms) of beats that all see 2, then adopted.
    expect(await fleet[0]!.limiter.heartbeat()).toBe(3);
    await until(() => fleet[0]!.limiter.liveInstances === 2, 2000);

    await fleet[0]!.limiter.consume('k');
    const keys = await fleet[0]!.client.keys(`${prefix}*`);
    expect(keys.sort()).toEqual([`${prefix}instances`, expect.stringMatching(`^${prefix}p:p:k:\\d+$`)]);
    for (const key of keys) {
      const ttl = await fleet[0]!.client.pttl(key);
      expect(ttl, key).toBeGreaterThan(0);
      expect(ttl, key).toBeLessThanOrEqual(6000);
    }
  });

  it('flapping (kill/restart 400 ms down, 400 ms up): every call answers within bounds, never throws', async () => {
    const policies = [{ name: 'p', limit: 1_000_000, windowMs: 60_000 }];
    const { limiter, failover } = await instance(redis.url, uniquePrefix('rl'), policies, { now: frozen });
    const flap = redis.flap({ downMs: 400, upMs: 400, cycles: 3 });
    let calls = 0;
    let slowest = 0;
    let flapping = true;
    void flap.done.then(() => (flapping = false));
    while (flapping) {
      const t0 = Date.now();
      const decision = await limiter.consume('k');
      slowest = Math.max(slowest, Date.now() - t0);
      expect(decision.allowed).toBe(true);
      calls += 1;
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(calls).toBeGreaterThan(50);
    expect(slowest).toBeLessThan(ANSWERED_WITHIN_MS);
    // Redis stays up after the last cycle: the limiter counts there again once the damped failback allows.
    await until(() => failover.mode === 'primary', 10_000);
    expect((await limiter.consume('k')).source).toBe('redis');
  });
});

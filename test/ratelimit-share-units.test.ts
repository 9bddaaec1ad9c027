// The per-instance share of a rate limit, unit by unit on a real redis-server: how an instance
// learns how many instances share the limit (heartbeats into one sorted set: rises at once, falls a
// whole TTL late, an outage never counts as seeing fewer, a closed instance leaves the set), and how
// that count sizes the in-memory share used while Redis is unavailable (ceil(limit / instances)).
// The outage itself (kill, pause, flapping) is in ratelimit-outage.test.ts; here the failover's
// kill switch stands for it, and the clock the counter reads (Date) is driven by the test.
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { Failover } from '../src/failover/index.js';
import { InstanceCounter } from '../src/ratelimit/instances.js';
import { createRateLimiter, type RateLimiterOptions } from '../src/ratelimit/limiter.js';
import type { RateLimiter } from '../src/ratelimit/types.js';
import { redisClient, startRedis, uniquePrefix, type RedisServer } from './helpers/redis.js';
import { until } from './helpers/wait.js';

// Long enough that no heartbeat timer fires and no member expires in Redis during a test: the tests
// beat by hand, and the TTL (3 × this) is crossed on the test's clock only.
const INTERVAL_MS = 60_000;
const TTL_MS = 3 * INTERVAL_MS;

describe('the live-instance count and the share it sizes (real redis-server)', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_700_000_000_000, toFake: ['Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A client and its failover, closed when the test ends. */
  async function connection(): Promise<{ client: Redis; failover: Failover }> {
    const client = redisClient(redis.url);
    await client.connect();
    const failover = new Failover({ name: 'redis', probe: () => client.ping(), deadlineMs: 1000 });
    await failover.start();
    onTestFinished(() => {
      failover.close();
      client.disconnect();
    });
    return { client, failover };
  }

  /** Releases the kill switch; resolves once the failover is back on Redis. */
  function failback(failover: Failover): Promise<void> {
    const back = new Promise<void>((resolve) =>
      failover.onChange((change) => {
        if (change.to === 'primary') resolve();
      }),
    );
    failover.setForced(false);
    return back;
  }

  /** Counters sharing one set, each on its own connection; `seen` holds every count each reported. */
  async function fleet(n: number, initial = 1, intervalMs = INTERVAL_MS) {
    const key = `${uniquePrefix('share')}instances`;
    const seen: number[][] = [];
    const members = [];
    for (let i = 0; i < n; i += 1) {
      const { client, failover } = await connection();
      const changes: number[] = [];
      seen.push(changes);
      const counter = new InstanceCounter({
        client,
        failover,
        key,
        instanceId: `i${i}`,
        intervalMs,
        initial,
        onChange: (count) => changes.push(count),
      });
      onTestFinished(() => counter.close());
      members.push({ counter, client, failover });
    }
    return { key, members, seen };
  }

  /** One beat of each member, one after the other (concurrent beats would see each other in any order). */
  const beatAll = async (members: { counter: InstanceCounter }[]) => {
    const counts: number[] = [];
    for (const m of members) counts.push(await m.counter.beat());
    return counts;
  };

  /** Two rounds of beats: after them every member has seen every other one. */
  const meet = async (members: { counter: InstanceCounter }[]) => {
    await beatAll(members);
    await beatAll(members);
  };

  describe('InstanceCounter', () => {
    it('rises at once as instances join, and reports each change once', async () => {
      const { members, seen } = await fleet(3);
      expect(await members[0]!.counter.beat()).toBe(1);
      expect(await members[1]!.counter.beat()).toBe(2);
      expect(await members[2]!.counter.beat()).toBe(3);
      expect(await beatAll(members)).toEqual([3, 3, 3]);
      expect(await beatAll(members)).toEqual([3, 3, 3]);
      expect(seen).toEqual([[3], [2, 3], [3]]);
    });

    it('falls only once it has seen fewer for a whole TTL in a row', async () => {
      const { members, seen } = await fleet(3);
      await meet(members);
      const [stays] = members;
      await members[2]!.counter.close(); // leaves the set
      expect(await stays!.counter.beat()).toBe(3); // sees 2: not yet
      vi.advanceTimersByTime(TTL_MS - 1);
      expect(await stays!.counter.beat()).toBe(3);
      vi.advanceTimersByTime(1);
      expect(await stays!.counter.beat()).toBe(2);
      expect(seen[0]).toEqual([3, 2]);
    });

    it('a count back up within the TTL restarts the row: a restarted Redis refilling is no fall', async () => {
      const { key, members } = await fleet(2);
      await meet(members);
      const [a, b] = members;
      await a!.client.del(key); // Redis lost the set (a restart without persistence)
      expect(await a!.counter.beat()).toBe(2); // sees only itself: not yet
      vi.advanceTimersByTime(TTL_MS / 2);
      await b!.counter.beat(); // b rejoins
      expect(await a!.counter.beat()).toBe(2);
      vi.advanceTimersByTime(TTL_MS / 2);
      await b!.client.zrem(key, 'i1');
      expect(await a!.counter.beat()).toBe(2); // seeing fewer again: a new row starts here
      vi.advanceTimersByTime(TTL_MS - 1);
      expect(await a!.counter.beat()).toBe(2);
      vi.advanceTimersByTime(1);
      expect(await a!.counter.beat()).toBe(1);
    });

    it('an outage keeps the last count and breaks the row: it is never seeing fewer', async () => {
      const { members } = await fleet(2);
      await meet(members);
      const [a, b] = members;
      await b!.counter.close();
      expect(await a!.counter.beat()).toBe(2); // the row starts
      vi.advanceTimersByTime(TTL_MS - 1);
      a!.failover.setForced(true);
      expect(await a!.counter.beat()).toBe(2); // skipped: Redis unavailable
      vi.advanceTimersByTime(1);
      expect(await a!.counter.beat()).toBe(2);
      expect(a!.counter.count).toBe(2);
      await failback(a!.failover);
      expect(await a!.counter.beat()).toBe(2); // a new row after the outage
      vi.advanceTimersByTime(TTL_MS);
      expect(await a!.counter.beat()).toBe(1);
    });

    it('starts from `initial` (whole, at least 1) until a beat answers', async () => {
      for (const [initial, expected] of [
        [4, 4],
        [2.9, 2],
        [0, 1],
        [-3, 1],
      ] as const) {
        const { members } = await fleet(1, initial);
        expect(members[0]!.counter.count).toBe(expected);
      }
    });

    it('concurrent beats share one round trip; a closed counter beats no more and leaves the set', async () => {
      const { key, members } = await fleet(1);
      const [m] = members;
      const evals = async () =>
        Number(/cmdstat_eval:calls=(\d+)/.exec(await m!.client.info('commandstats'))?.[1] ?? 0);
      const before = await evals();
      expect(await Promise.all([m!.counter.beat(), m!.counter.beat(), m!.counter.beat()])).toEqual([1, 1, 1]);
      expect((await evals()) - before).toBe(1);
      expect(await m!.client.zrange(key, 0, -1)).toEqual(['i0']);
      await m!.counter.close();
      expect(await m!.client.zrange(key, 0, -1)).toEqual([]);
      expect(await m!.counter.beat()).toBe(1);
      expect(await m!.client.zrange(key, 0, -1)).toEqual([]);
      expect((await evals()) - before).toBe(1);
    });

    it('start beats at once, and again on every failback', async () => {
      vi.useRealTimers(); // `until` times out on the real clock
      const { key, members } = await fleet(1);
      const [m] = members;
      m!.counter.start();
      m!.counter.start();
      await until(async () => (await m!.client.zcard(key)) === 1, 2000, 'first beat');
      await m!.client.del(key); // a Redis restart without persistence drops the set
      m!.failover.setForced(true);
      m!.failover.setForced(false);
      await until(async () => (await m!.client.zcard(key)) === 1, 5000, 'beat on failback');
    });

    it('keeps beating every interval once started, so its peers keep counting it', async () => {
      vi.useRealTimers(); // real beats on a real interval
      const { key, members } = await fleet(1, 1, 20);
      const [m] = members;
      m!.counter.start();
      const score = async () => Number((await m!.client.zscore(key, 'i0')) ?? -1);
      await until(async () => (await score()) > 0, 2000, 'first beat');
      const first = await score();
      await until(async () => (await score()) > first, 2000, 'a later beat'); // scored by Redis's clock
    });

    it('reports no change once closed, even from a beat that was in flight', async () => {
      const { members, seen } = await fleet(2);
      const [a, b] = members;
      await a!.counter.beat(); // alone: 1, as it started
      await b!.counter.beat();
      const inflight = a!.counter.beat(); // would see 2
      await a!.counter.close();
      expect(await inflight).toBe(1);
      expect(seen[0]).toEqual([]);
    });

    it('the set and each beat expire: a crashed instance is dropped by Redis itself', async () => {
      const { key, members } = await fleet(1);
      await members[0]!.counter.beat();
      const ttl = await members[0]!.client.pttl(key);
      expect(ttl).toBeGreaterThan(TTL_MS - 5000);
      expect(ttl).toBeLessThanOrEqual(TTL_MS);
    });
  });

  describe('the share of the limit', () => {
    const policies = [
      { name: 'api', limit: 10, windowMs: 60_000 },
      { name: 'login', limit: 3, windowMs: 60_000 },
    ];

    /** A limiter on Redis whose heartbeats the test drives. */
    async function limiter(
      extra: Partial<RateLimiterOptions> = {},
    ): Promise<{ l: RateLimiter; failover: Failover; client: Redis }> {
      const { client, failover } = await connection();
      const l = createRateLimiter({
        policies,
        redis: { client, failover },
        prefix: uniquePrefix('rl'),
        heartbeatIntervalMs: INTERVAL_MS,
        now: () => 1_700_000_040_000,
        ...extra,
      });
      onTestFinished(() => l.close());
      return { l, failover, client };
    }

    /** How many of `n` consumes of one key the limiter admits. */
    async function admitted(l: RateLimiter, n: number, policy?: string): Promise<number> {
      let count = 0;
      for (let i = 0; i < n; i += 1) if ((await l.consume(`k${n}`, 1, policy)).allowed) count += 1;
      return count;
    }

    it('during an outage each instance admits ceil(limit / live instances) per policy', async () => {
      const prefix = uniquePrefix('rl');
      const four = await Promise.all(['a', 'b', 'c', 'd'].map((id) => limiter({ prefix, instanceId: id })));
      await Promise.all(four.map(({ l }) => l.heartbeat()));
      const { l, failover } = four[0]!;
      expect(await l.heartbeat()).toBe(4);
      expect(l.liveInstances).toBe(4);
      failover.setForced(true);
      expect(await admitted(l, 10)).toBe(3); // ceil(10 / 4)
      expect(await admitted(l, 3, 'login')).toBe(1); // ceil(3 / 4): never starved to 0
    });

    it('the share follows the count: fewer live instances, a bigger share', async () => {
      const prefix = uniquePrefix('rl');
      const [a, b] = await Promise.all(['a', 'b'].map((id) => limiter({ prefix, instanceId: id })));
      await Promise.all([a!.l.heartbeat(), b!.l.heartbeat()]);
      expect(await a!.l.heartbeat()).toBe(2);
      await b!.l.close();
      await a!.l.heartbeat();
      vi.advanceTimersByTime(TTL_MS);
      expect(await a!.l.heartbeat()).toBe(1);
      a!.failover.setForced(true);
      expect(await admitted(a!.l, 12)).toBe(10);
    });

    it('counts the instances of its own prefix, each once (a random id by default), live 3 × 2 s', async () => {
      const [shared, other] = [uniquePrefix('rl'), uniquePrefix('rl')];
      const defaults = { prefix: shared, heartbeatIntervalMs: undefined };
      const [a, b] = await Promise.all([limiter(defaults), limiter(defaults)]);
      const elsewhere = await limiter({ prefix: other });
      await Promise.all([a.l.heartbeat(), b.l.heartbeat(), elsewhere.l.heartbeat()]);
      expect(await a.l.heartbeat()).toBe(2);
      expect(await elsewhere.l.heartbeat()).toBe(1);
      const ttl = await a.client.pttl(`${shared}instances`);
      expect(ttl).toBeGreaterThan(5000);
      expect(ttl).toBeLessThanOrEqual(6000);
    });

    it('before any beat answers, initialInstances sizes the share (whole, at least 1)', async () => {
      const { l, failover } = await limiter({ initialInstances: 5.5 });
      failover.setForced(true);
      expect(l.liveInstances).toBe(5);
      expect(await admitted(l, 10)).toBe(2);
      const alone = createRateLimiter({ policies, initialInstances: 0, now: () => 0 });
      onTestFinished(() => alone.close());
      expect(alone.liveInstances).toBe(1);
      expect(await admitted(alone, 12)).toBe(10);
    });
  });
});

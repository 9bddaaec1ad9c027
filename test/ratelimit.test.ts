// One conformance suite for the rate limiter (STYLE.md §12), run memory-only and on a real
// redis-server. Windows are placed by the limiter's injected clock, so most tests drive time instead
// of sleeping; one test per backend uses a real 1 s window to prove expiry end to end.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { isBulwarkError } from '../src/errors/index.js';
import { Failover } from '../src/failover/index.js';
import { createRateLimiter, type RateLimiterOptions } from '../src/ratelimit/limiter.js';
import type { DecisionSource, RateLimiter, RateLimitPolicy } from '../src/ratelimit/types.js';
import { redisClient, startRedis, uniquePrefix, type RedisServer } from './helpers/redis.js';

/** What the suite needs from one backend. */
interface Backend {
  source: DecisionSource;
  /** Whether `consumeNow` can decide (no I/O needed) while the backend is healthy. */
  decidesNow: boolean;
  /** A limiter isolated from every other one this backend made, closed when the test ends. */
  create(opts: Omit<RateLimiterOptions, 'redis'>): Promise<RateLimiter>;
}

const POLICIES: RateLimitPolicy[] = [
  { name: 'default', limit: 5, windowMs: 1000 },
  { name: 'strict', limit: 2, windowMs: 10_000 },
];

/** A clock standing at the first millisecond of a window (aligned for every policy above). */
function clock(start = 1_700_000_000_000) {
  const state = { now: start };
  return { now: () => state.now, advance: (ms: number) => (state.now += ms) };
}

async function refusal(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
}

function limiterSuite(name: string, setup: () => Backend): void {
  describe(`RateLimiter conformance: ${name}`, () => {
    it('admits exactly `limit` points per key and window, then refuses until the window ends', async () => {
      const backend = setup();
      const time = clock();
      const limiter = await backend.create({ policies: POLICIES, now: time.now });
      for (let i = 0; i < 5; i++) {
        const d = await limiter.consume('alice');
        expect(d).toEqual({
          allowed: true,
          limit: 5,
          remaining: 4 - i,
          resetMs: 1000 - i * 10,
          policy: 'default',
          source: backend.source,
        });
        time.advance(10);
      }
      const refused = await limiter.consume('alice');
      expect(refused).toEqual({
        allowed: false,
        limit: 5,
        remaining: 0,
        resetMs: 950,
        retryAfterMs: 950,
        policy: 'default',
        source: backend.source,
      });
      time.advance(949);
      expect((await limiter.consume('alice')).allowed).toBe(false);
      time.advance(1);
      expect(await limiter.consume('alice')).toMatchObject({ allowed: true, remaining: 4, resetMs: 1000 });
    });

    it('counts points > 1, refuses what does not fit, and counts refused points too', async () => {
      const backend = setup();
      const limiter = await backend.create({ policies: POLICIES, now: clock().now });
      expect(await limiter.consume('k', 3)).toMatchObject({ allowed: true, remaining: 2 });
      expect(await limiter.consume('k', 2)).toMatchObject({ allowed: true, remaining: 0 });
      expect(await limiter.consume('k', 1)).toMatchObject({ allowed: false, remaining: 0 });
      expect(await limiter.consume('big', 6)).toMatchObject({ allowed: false, remaining: 0 });
      // The refused 6 stay counted in this window (rate-limiter-flexible semantics).
      expect(await limiter.consume('big', 1)).toMatchObject({ allowed: false });
    });

    it('keeps keys and policies independent', async () => {
      const backend = setup();
      const limiter = await backend.create({ policies: POLICIES, defaultPolicy: 'strict', now: clock().now });
      expect(limiter.defaultPolicy).toEqual(POLICIES[1]);
      expect(await limiter.consume('a')).toMatchObject({ allowed: true, remaining: 1, policy: 'strict' });
      expect(await limiter.consume('a')).toMatchObject({ allowed: true, remaining: 0, resetMs: 10_000 });
      expect((await limiter.consume('a')).allowed).toBe(false);
      expect(await limiter.consume('b')).toMatchObject({ allowed: true, remaining: 1 });
      expect(await limiter.consume('a', 1, 'default')).toMatchObject({
        allowed: true,
        remaining: 4,
        policy: 'default',
      });
    });

    it('is exact under concurrency: 40 parallel consumes of a limit of 5 admit 5', async () => {
      const backend = setup();
      const limiter = await backend.create({ policies: POLICIES, now: clock().now });
      const decisions = await Promise.all(Array.from({ length: 40 }, () => limiter.consume('burst')));
      expect(decisions.filter((d) => d.allowed)).toHaveLength(5);
      expect(limiter.topOffenders(5)).toEqual([{ policy: 'default', key: 'burst', count: 35, overcount: 0 }]);
    });

    it('consumeNow decides without a promise only where no I/O is needed, counting with consume', async () => {
      const backend = setup();
      const time = clock();
      const limiter = await backend.create({ policies: POLICIES, now: time.now });
      await limiter.consume('mixed');
      const now = limiter.consumeNow('mixed');
      if (!backend.decidesNow) {
        expect(now).toBeUndefined();
        expect(await limiter.consume('mixed')).toMatchObject({ remaining: 3, source: backend.source });
        return;
      }
      expect(now).toEqual({
        allowed: true,
        limit: 5,
        remaining: 3,
        resetMs: 1000,
        policy: 'default',
        source: 'memory',
      });
      expect(limiter.consumeNow('mixed', 3)).toMatchObject({ allowed: true, remaining: 0 });
      expect(limiter.consumeNow('mixed')).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 1000 });
      expect(limiter.topOffenders(1)).toEqual([{ policy: 'default', key: 'mixed', count: 1, overcount: 0 }]);
      expect(() => limiter.consumeNow('mixed', 1, 'nope')).toThrow(/unknown policy/);
      expect(() => limiter.consumeNow('mixed', 0)).toThrow(/positive integer/);
      // A clock that steps back into the previous window counts in the current one; the next window starts afresh.
      time.advance(1000);
      expect(limiter.consumeNow('mixed')).toMatchObject({ allowed: true, remaining: 4 });
      time.advance(-1000);
      expect(limiter.consumeNow('mixed')).toMatchObject({ allowed: true, remaining: 3 });
      limiter.enabled = false;
      expect(limiter.consumeNow('mixed')).toMatchObject({ allowed: true, remaining: 5, source: 'off' });
    });

    it('resets after a real 1 s window', async () => {
      const backend = setup();
      // A window long enough that the three calls below land in one even on a busy machine.
      const limiter = await backend.create({ policies: [{ name: 'short', limit: 2, windowMs: 1000 }] });
      let first = await limiter.consume('r');
      if (first.resetMs < 500) {
        // Too close to a boundary to fill the window reliably: start in the next one.
        await new Promise((r) => setTimeout(r, first.resetMs + 5));
        first = await limiter.consume('r');
      }
      expect(first.resetMs).toBeLessThanOrEqual(1000);
      await limiter.consume('r');
      const refused = await limiter.consume('r');
      expect(refused.allowed).toBe(false);
      await new Promise((r) => setTimeout(r, (refused.retryAfterMs ?? 0) + 5));
      expect(await limiter.consume('r')).toMatchObject({ allowed: true, remaining: 1 });
    });

    it('rejects unknown policies and bad points with BWK_ERR_RATELIMIT_OPTIONS, counting nothing', async () => {
      const backend = setup();
      const limiter = await backend.create({ policies: POLICIES, now: clock().now });
      for (const call of [
        () => limiter.consume('k', 1, 'nope'),
        () => limiter.consume('k', 0),
        () => limiter.consume('k', 1.5),
      ]) {
        expect(isBulwarkError(await refusal(call()), 'BWK_ERR_RATELIMIT_OPTIONS')).toBe(true);
      }
      expect(() => limiter.policy('nope')).toThrow(/unknown policy/);
      expect(await limiter.consume('k')).toMatchObject({ remaining: 4 });
    });
  });
}

describe('createRateLimiter options', () => {
  it.each([
    [[], /at least one policy/],
    [[{ name: 'a b', limit: 1, windowMs: 1000 }], /policy name/],
    [[{ name: 'a', limit: 0, windowMs: 1000 }], /limit must be a positive integer/],
    [[{ name: 'a', limit: 1, windowMs: 1.5 }], /windowMs must be a positive integer/],
    [
      [
        { name: 'a', limit: 1, windowMs: 1000 },
        { name: 'a', limit: 2, windowMs: 1000 },
      ],
      /duplicate policy/,
    ],
  ])('rejects invalid policies (%#)', (policies, message) => {
    let caught: unknown;
    try {
      createRateLimiter({ policies });
    } catch (error) {
      caught = error;
    }
    expect(isBulwarkError(caught, 'BWK_ERR_RATELIMIT_OPTIONS')).toBe(true);
    expect((caught as Error).message).toMatch(message);
  });

  it('memory-only: shares the limit by initialInstances', async () => {
    const limiter = createRateLimiter({
      policies: [{ name: 'p', limit: 10, windowMs: 60_000 }],
      initialInstances: 4,
      now: clock().now,
    });
    expect(limiter.liveInstances).toBe(4);
    expect(await limiter.heartbeat()).toBe(4);
    const allowed = (await Promise.all(Array.from({ length: 10 }, () => limiter.consume('k')))).filter(
      (d) => d.allowed,
    );
    expect(allowed).toHaveLength(3);
    await limiter.close();
  });
});

limiterSuite('memory', () => ({
  source: 'memory',
  decidesNow: true,
  create: async (opts) => {
    const limiter = createRateLimiter(opts);
    onTestFinished(() => limiter.close());
    return limiter;
  },
}));

describe('on a real redis-server', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  limiterSuite('redis', () => ({
    source: 'redis',
    decidesNow: false,
    create: async (opts) => {
      const client = redisClient(redis.url);
      await client.connect();
      // This suite checks Redis's counting, not the failover: a generous deadline keeps a busy CI
      // machine (a reply later than 25 ms) from answering from memory. Faults: ratelimit-outage.
      const failover = new Failover({ name: 'redis', probe: () => client.ping(), deadlineMs: 1000 });
      await failover.start();
      const limiter = createRateLimiter({ ...opts, redis: { client, failover }, prefix: uniquePrefix('rl') });
      onTestFinished(async () => {
        await limiter.close();
        failover.close();
        client.disconnect();
      });
      return limiter;
    },
  }));
});

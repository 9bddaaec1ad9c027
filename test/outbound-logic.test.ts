// The pure logic of safe outbound calls on a driven clock: the retry budget, the adaptive
// throttle, the breaker (cockatiel's, fed by a consecutive-or-rate breaker) and the guard that
// puts them together around a function (`protect`).
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isBulwarkError } from '../src/errors/index.js';
import { createBreaker, breakerState } from '../src/outbound/breaker.js';
import { RetryBudget } from '../src/outbound/budget.js';
import { Outbound, type GuardClock } from '../src/outbound/index.js';
import { validateOutboundOptions } from '../src/outbound/options.js';
import { AdaptiveThrottle } from '../src/outbound/throttle.js';
import { SlidingCounts } from '../src/outbound/window.js';

/** A clock the test moves by hand; sleeps resolve at once (and are recorded). */
function drivenClock(random = () => 0.5): GuardClock & { t: number; slept: number[] } {
  const clock = {
    t: 1_000_000,
    slept: [] as number[],
    now: () => clock.t,
    random,
    sleep: (ms: number) => {
      clock.slept.push(ms);
      return Promise.resolve();
    },
  };
  return clock;
}

const fail = () => Promise.reject(new Error('boom'));

afterEach(() => {
  vi.useRealTimers();
});

describe('sliding counts', () => {
  it('forget an event once the window has passed it', () => {
    let t = 0;
    const counts = new SlidingCounts(['a'], 1_000, 10, () => t);
    counts.add('a', 3);
    t = 500;
    counts.add('a');
    expect(counts.sum('a')).toBe(4);
    t = 1_050;
    expect(counts.sum('a')).toBe(1);
    t = 1_600;
    expect(counts.sum('a')).toBe(0);
  });
});

describe('retry budget', () => {
  it('allows retries up to ratio × calls over the window, then refuses, and refills as calls age out', () => {
    let t = 0;
    const budget = new RetryBudget({ ratio: 0.1, windowMs: 10_000, minRetries: 0 }, () => t);
    expect(budget.tryRetry()).toBe(false);
    for (let i = 0; i < 100; i++) budget.noteCall();
    let granted = 0;
    while (budget.tryRetry()) granted++;
    expect(granted).toBe(10);
    t = 11_000;
    expect(budget.available()).toBe(0);
    for (let i = 0; i < 30; i++) budget.noteCall();
    let later = 0;
    while (budget.tryRetry()) later++;
    expect(later).toBe(3);
  });

  it('keeps minRetries per window for a quiet service', () => {
    const budget = new RetryBudget({ ratio: 0.1, minRetries: 2 }, () => 0);
    budget.noteCall();
    expect([budget.tryRetry(), budget.tryRetry(), budget.tryRetry()]).toEqual([true, true, false]);
  });
});

describe('adaptive throttle (Google SRE, K = 2)', () => {
  it('rejects with probability max(0, (requests − K·accepts) / (requests + 1))', () => {
    let t = 0;
    const throttle = new AdaptiveThrottle(
      { k: 2, windowMs: 120_000 },
      () => t,
      () => 0.5,
    );
    for (let i = 0; i < 100; i++) throttle.record(i < 50);
    // Half accepted: 100 − 2·50 = 0.
    expect(throttle.rejectProbability()).toBe(0);
    for (let i = 0; i < 100; i++) throttle.record(false);
    // 200 requests, 50 accepts: (200 − 100) / 201.
    expect(throttle.rejectProbability()).toBeCloseTo(100 / 201, 10);
    t = 121_000;
    expect(throttle.rejectProbability()).toBe(0);
  });

  it('admits by the draw against the probability, and counts rejected attempts as requests', () => {
    let draw = 0.9;
    const throttle = new AdaptiveThrottle(
      { minRequests: 0 },
      () => 0,
      () => draw,
    );
    for (let i = 0; i < 9; i++) throttle.record(false);
    // 9 requests, no accepts: p = 9/10.
    expect(throttle.rejectProbability()).toBeCloseTo(0.9, 10);
    draw = 0.95;
    expect(throttle.admit()).toBe(true);
    draw = 0.5;
    expect(throttle.admit()).toBe(false);
    // The admitted attempt counts when it ends; the rejected one at once.
    expect(throttle.counts()).toEqual({ requests: 10, accepts: 0 });
    throttle.record(true);
    expect(throttle.counts()).toEqual({ requests: 11, accepts: 1 });
  });

  it('does not count attempts in flight: a burst to a healthy upstream is admitted whole', () => {
    const throttle = new AdaptiveThrottle(
      { minRequests: 0 },
      () => 0,
      () => 0,
    );
    for (let i = 0; i < 100; i++) expect(throttle.admit()).toBe(true);
    expect(throttle.rejectProbability()).toBe(0);
  });

  it('rejects nothing below minRequests (default 10): one failure of a quiet client is not a refusing upstream', () => {
    const throttle = new AdaptiveThrottle(
      {},
      () => 0,
      () => 0,
    );
    for (let i = 0; i < 9; i++) {
      expect(throttle.admit()).toBe(true);
      throttle.record(false);
    }
    expect(throttle.rejectProbability()).toBe(0);
    throttle.record(false);
    expect(throttle.rejectProbability()).toBeCloseTo(10 / 11, 10);
    expect(throttle.admit()).toBe(false);
  });
});

describe('breaker', () => {
  it('opens after consecutive failures, lets one trial call through after halfOpenAfterMs, closes on its success', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(0);
    const breaker = createBreaker({ consecutiveFailures: 3, halfOpenAfterMs: 1_000 });
    for (let i = 0; i < 3; i++) await expect(breaker.execute(fail)).rejects.toThrow('boom');
    expect(breakerState(breaker)).toBe('open');
    const calls = vi.fn(() => Promise.resolve('ok'));
    await expect(breaker.execute(calls)).rejects.toThrow(/open|broken/i);
    expect(calls).not.toHaveBeenCalled();
    vi.setSystemTime(1_001);
    // The trial call fails: open again for as long.
    await expect(breaker.execute(fail)).rejects.toThrow('boom');
    expect(breakerState(breaker)).toBe('open');
    vi.setSystemTime(2_100);
    let release: (v: string) => void = () => undefined;
    const trial = breaker.execute(() => new Promise<string>((resolve) => (release = resolve)));
    expect(breakerState(breaker)).toBe('half-open');
    // Only one trial: a call meanwhile waits for its outcome instead of reaching the upstream.
    const waiting = breaker.execute(calls);
    await Promise.resolve();
    expect(calls).not.toHaveBeenCalled();
    release('trial ok');
    await expect(trial).resolves.toBe('trial ok');
    await expect(waiting).resolves.toBe('ok');
    expect(breakerState(breaker)).toBe('closed');
  });

  it('opens on the failure rate over the window, which no streak reaches', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(0);
    const breaker = createBreaker({
      consecutiveFailures: 5,
      failureRate: 0.5,
      windowMs: 1_000,
      minimumRps: 10,
    });
    const ok = () => Promise.resolve('ok');
    // Two failures for each success, ten calls a window's tenth: a streak never passes 2.
    for (let i = 0; i < 60 && breakerState(breaker) === 'closed'; i++) {
      vi.setSystemTime(i * 10);
      await breaker.execute(i % 3 === 0 ? ok : fail).catch(() => undefined);
    }
    expect(breakerState(breaker)).toBe('open');
  });

  it('stays closed below the minimum traffic, however bad the rate', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(0);
    const breaker = createBreaker({
      consecutiveFailures: 100,
      failureRate: 0.5,
      windowMs: 10_000,
      minimumRps: 2,
    });
    for (let i = 0; i < 19; i++) {
      vi.setSystemTime(i * 100);
      await breaker.execute(i % 2 === 0 ? fail : () => Promise.resolve(1)).catch(() => undefined);
    }
    expect(breakerState(breaker)).toBe('closed');
  });
});

describe('protect (the guard around a function)', () => {
  it('retries only an idempotent call, with jittered backoff within its ceiling, and counts each retry', async () => {
    const clock = drivenClock(() => 0.5);
    const outbound = await Outbound.create(
      { defaults: { throttle: false, retry: { maxRetries: 2, minRetries: 10 } } },
      new Registry(),
      clock,
    );
    const once = vi.fn(fail);
    const error = await outbound.protect('db', once).catch((e: unknown) => e);
    expect(isBulwarkError(error, 'BWK_ERR_OUTBOUND_FAILED')).toBe(true);
    expect((error as Error).cause).toEqual(new Error('boom'));
    expect(once).toHaveBeenCalledTimes(1);
    const thrice = vi.fn(fail);
    await expect(outbound.protect('db', thrice, { idempotent: true })).rejects.toThrow(/failed: boom/);
    expect(thrice).toHaveBeenCalledTimes(3);
    // random 0.5 × ceiling 50, then 100 (base 50 doubling).
    expect(clock.slept).toEqual([25, 50]);
    expect(outbound.upstreams()[0]?.retries).toBe(2);
  });

  it('stops retrying when the budget is spent: retries ≤ 10% of calls', async () => {
    const clock = drivenClock();
    const outbound = await Outbound.create(
      {
        defaults: {
          throttle: false,
          breaker: { consecutiveFailures: 1_000_000, minimumRps: 1_000_000 },
          retry: { minRetries: 0 },
        },
      },
      new Registry(),
      clock,
    );
    let attempts = 0;
    for (let i = 0; i < 200; i++)
      await outbound.protect('db', () => (attempts++, fail()), { idempotent: true }).catch(() => undefined);
    const retries = attempts - 200;
    expect(retries).toBeGreaterThan(0);
    expect(retries).toBeLessThanOrEqual(20);
  });

  it('rejects at the deadline even when the function ignores its signal, and aborts the signal', async () => {
    const outbound = await Outbound.create({}, new Registry(), drivenClock());
    let seen: AbortSignal | undefined;
    const started = Date.now();
    const error = await outbound
      .protect('slow', (signal) => ((seen = signal), new Promise<never>(() => undefined)), { deadlineMs: 50 })
      .catch((e: unknown) => e);
    expect(isBulwarkError(error, 'BWK_ERR_OUTBOUND_DEADLINE')).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(seen?.aborted).toBe(true);
  });

  it('rejects at the deadline a call that waits for the half-open breaker’s trial call', async () => {
    const outbound = await Outbound.create(
      { defaults: { breaker: { consecutiveFailures: 1, halfOpenAfterMs: 30 }, throttle: false } },
      new Registry(),
      drivenClock(),
    );
    await expect(outbound.protect('db', fail)).rejects.toMatchObject({ code: 'BWK_ERR_OUTBOUND_FAILED' });
    await new Promise((resolve) => setTimeout(resolve, 40));
    let release: (value: string) => void = () => undefined;
    const trial = outbound.protect('db', () => new Promise<string>((resolve) => (release = resolve)));
    await new Promise((resolve) => setImmediate(resolve));
    expect(outbound.upstreams()[0]?.breaker).toBe('half-open');
    const started = Date.now();
    const waiting = await outbound
      .protect('db', () => Promise.resolve('late'), { deadlineMs: 50 })
      .catch((e: unknown) => e);
    expect(isBulwarkError(waiting, 'BWK_ERR_OUTBOUND_DEADLINE')).toBe(true);
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(45);
    // At its own deadline, not when the trial call's (2 s) ends.
    expect(waited).toBeLessThan(1_000);
    release('trial ok');
    await expect(trial).resolves.toBe('trial ok');
  });

  it('fails fast once the breaker is open, and answers with the fallback when given', async () => {
    const outbound = await Outbound.create(
      { defaults: { throttle: false, breaker: { consecutiveFailures: 2 } } },
      new Registry(),
      drivenClock(),
    );
    for (let i = 0; i < 2; i++) await outbound.protect('sdk', fail).catch(() => undefined);
    const fn = vi.fn(() => Promise.resolve('fresh'));
    const error = await outbound.protect('sdk', fn).catch((e: unknown) => e);
    expect(isBulwarkError(error, 'BWK_ERR_OUTBOUND_OPEN')).toBe(true);
    expect((error as { statusCode: number }).statusCode).toBe(503);
    await expect(outbound.protect('sdk', fn, { fallback: () => 'stale' })).resolves.toBe('stale');
    expect(fn).not.toHaveBeenCalled();
    expect(outbound.upstreams()[0]).toMatchObject({ breaker: 'open', calls: { failure: 2, open: 2 } });
  });

  it('throttles locally while the function keeps failing', async () => {
    const outbound = await Outbound.create(
      { defaults: { breaker: { consecutiveFailures: 1_000_000, minimumRps: 1_000_000 } } },
      new Registry(),
      drivenClock(() => 0.5),
    );
    const fn = vi.fn(fail);
    const codes = new Map<string, number>();
    for (let i = 0; i < 100; i++) {
      const error = (await outbound.protect('api', fn).catch((e: unknown) => e)) as { code: string };
      codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
    }
    expect(codes.get('BWK_ERR_OUTBOUND_THROTTLED')).toBeGreaterThan(0);
    // The first 10 (minRequests) reach it; then p = 10/11 and more, above every draw of 0.5.
    expect(fn.mock.calls.length).toBe(10);
    expect(codes.get('BWK_ERR_OUTBOUND_THROTTLED')).toBe(90);
  });

  it('fails with the kill switch on, and recovers when it is off', async () => {
    const outbound = await Outbound.create({ upstreams: { db: {} } }, new Registry(), drivenClock());
    outbound.setKilled('db', true);
    await expect(outbound.protect('db', () => Promise.resolve(1))).rejects.toMatchObject({
      code: 'BWK_ERR_OUTBOUND_KILLED',
    });
    await expect(outbound.protect('db', () => Promise.resolve(1), { fallback: () => 0 })).resolves.toBe(0);
    outbound.setKilled('db', false);
    await expect(outbound.protect('db', () => Promise.resolve(1))).resolves.toBe(1);
  });
});

describe('options', () => {
  it('refuses bad names, origins and numbers, naming each', () => {
    const error = (() => {
      try {
        validateOutboundOptions({
          upstreams: {
            'Bad Name': {},
            api: { origin: 'http://x/path', deadlineMs: -1, breaker: { failureRate: 2 } },
          },
        });
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(isBulwarkError(error, 'BWK_ERR_OUTBOUND_OPTIONS')).toBe(true);
    expect(error?.message).toMatch(/"Bad Name"/);
    expect(error?.message).toMatch(/api\.origin/);
    expect(error?.message).toMatch(/api\.deadlineMs/);
    expect(error?.message).toMatch(/api\.breaker\.failureRate/);
    expect(() =>
      validateOutboundOptions({ upstreams: { api: { origin: 'https://api.example:8443' } } }),
    ).not.toThrow();
  });
});

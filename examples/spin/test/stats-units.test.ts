// The pure parts of the queue statistics: quantiles from the log buckets, the last hour's activity
// (rates over the time really observed, the imbalance, the match rate against its baseline, the
// hour's ring, a reset) on a driven clock, and recommendations said only when true.
import { describe, expect, it } from 'vitest';
import { bucketOf, bucketStartMs, quantileMs } from '../src/stats-histogram.js';
import { RecentActivity } from '../src/stats-activity.js';
import { recommendations, type AdviceInput } from '../src/stats-advice.js';
import type { WaitCell } from '../src/stats-windows.js';
import type { FeedEvent } from '../src/store.js';

const MIN = 60_000;
let id = 0;
const event = (type: string, at: number, data: Record<string, unknown> = {}): FeedEvent => ({
  id: ++id,
  userId: type === 'outcome' ? 'u' : null,
  type,
  data,
  at,
});
const joined = (group: string, at: number) => event('joined', at, { group });
const matched = (group: string, at: number, waitedMs: number) => event('matched', at, { group, waitedMs });

describe('wait buckets', () => {
  it('are 13% of (1 s + the wait) wide, and their quantiles within that of the exact ones', () => {
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(-5)).toBe(0);
    for (const ms of [1, 999, 1000, 60_000, 14 * MIN, 86_400_000]) {
      const b = bucketOf(ms);
      expect(bucketStartMs(b)).toBeLessThanOrEqual(ms + 1e-6);
      expect(bucketStartMs(b + 1)).toBeGreaterThan(ms);
      // 13.3% of (1 s + the wait) wide: 13% of long waits, about 0.13 s of short ones.
      expect(bucketStartMs(b + 1) - bucketStartMs(b)).toBeLessThan(0.134 * (1000 + ms));
    }
    expect(quantileMs([], 0.9)).toBeNull();
    // 1..1000 s, one each: the exact p90 is 900 s.
    const waits = Array.from({ length: 1000 }, (_, i) => (i + 1) * 1000);
    const counts = new Map<number, number>();
    for (const w of waits) counts.set(bucketOf(w), (counts.get(bucketOf(w)) ?? 0) + 1);
    const p90 = quantileMs(counts, 0.9)!;
    expect(Math.abs(p90 - 900_000) / 900_000).toBeLessThan(0.13);
    expect(quantileMs([[10, 0]], 0.5)).toBeNull();
  });
});

describe('RecentActivity', () => {
  it('takes rates over the time observed, states the imbalance from 5 arrivals, capped when one side has none', () => {
    let now = 100 * 60 * MIN;
    const activity = new RecentActivity(() => now, now);
    for (let i = 0; i < 4; i += 1) activity.apply([joined('man:woman', now)]);
    expect(activity.menPerWoman()).toBeUndefined();
    activity.apply([joined('man:woman+nonbinary', now), joined('man:man', now), joined('woman:woman', now)]);
    // Gay men and lesbians are on neither side of it.
    expect(activity.arrivals()).toMatchObject({ men: 5, women: 0 });
    expect(activity.menPerWoman()).toBe(100);
    now += 10 * MIN;
    activity.apply([joined('woman:man', now), joined('woman:woman+man', now)]);
    expect(activity.menPerWoman()).toBe(2.5);
    // 7 arrivals in 10 minutes observed (not 15): 0.5 a minute of men.
    expect(activity.arrivals().perMinute.men).toBeCloseTo(0.5);
  });

  it('compares the last 5 minutes’ match rate with the 55 before, once there is a baseline', () => {
    const start = 200 * 60 * MIN;
    let now = start;
    const activity = new RecentActivity(() => now, now);
    // Two matches a minute for 50 minutes.
    for (let m = 0; m < 50; m += 1)
      for (let k = 0; k < 2; k += 1)
        activity.apply([
          matched('man:woman', start + m * MIN, 1000),
          matched('woman:man', start + m * MIN, 1000),
        ]);
    now = start + 50 * MIN;
    expect(activity.matchRate().ratio).toBeCloseTo(2 / 2, 1);
    // Then none for 5 minutes.
    now = start + 55 * MIN;
    const dropped = activity.matchRate();
    expect(dropped.recent).toBe(0);
    expect(dropped.ratio).toBe(0);
    // No baseline yet, or not 15 minutes seen: unknown.
    expect(new RecentActivity(() => now, now - 10 * MIN).matchRate().ratio).toBeUndefined();
  });

  it('forgets what is over an hour old, reuses the ring, and empties at a reset', () => {
    let now = 300 * 60 * MIN;
    const activity = new RecentActivity(() => now, now - 60 * MIN);
    for (let i = 0; i < 5; i += 1) activity.apply([matched('man:woman', now, 14 * MIN)]);
    const p90 = activity.p90WaitMs('man')!;
    expect(Math.abs(p90 - 14 * MIN) / (14 * MIN)).toBeLessThan(0.13);
    expect(activity.p90WaitMs('woman')).toBeUndefined();
    activity.apply([matched('man:woman', now - 61 * MIN, 1000)]); // too old: ignored
    now += 61 * MIN;
    // The same ring slot, an hour on: the old minute is gone.
    activity.apply([matched('man:woman', now, 1000)]);
    expect(activity.matchesPerMinute(60).matches).toBe(0.5);
    // Two outcome events per settled match, one per user.
    for (let i = 0; i < 4; i += 1)
      activity.apply([
        event('outcome', now, { outcome: 'success' }),
        event('outcome', now, { outcome: 'success' }),
      ]);
    expect(activity.successRatio()).toBeUndefined();
    activity.apply([
      event('outcome', now, { outcome: 'declined' }),
      event('outcome', now, { outcome: 'declined' }),
    ]);
    expect(activity.successRatio()).toBeCloseTo(4 / 5);
    activity.apply([event('reset', now)]);
    expect(activity.matchesPerMinute(60).matches).toBe(0);
    expect(activity.successRatio()).toBeUndefined();
  });
});

describe('recommendations', () => {
  const cell = (group: string, waitMs: number, count: number, settled = 0, success = 0): WaitCell => ({
    group: group as WaitCell['group'],
    bucket: bucketOf(waitMs),
    count,
    totalMs: waitMs * count,
    settled,
    success,
  });
  const input = (over: Partial<AdviceInput> = {}): AdviceInput => ({
    arrivals: { men: 20, women: 19, over: 'in the last hour' },
    waiting: { woman: 0, man: 0, nonbinary: 0 },
    day: [],
    hour: [],
    matchRate: { ratio: undefined, recent: 1, baseline: 1 },
    ...over,
  });

  it('says nothing of a balanced, healthy queue', () => {
    expect(recommendations(input())).toEqual([]);
    expect(recommendations(input({ arrivals: { men: 9, women: 0, over: 'in the last hour' } }))).toEqual([]);
  });

  it('states an imbalance with the waits, or that one side is missing', () => {
    const day = [cell('woman:man', 20 * MIN, 8), cell('man:woman', 20_000, 8)];
    const [advice] = recommendations(
      input({
        arrivals: { men: 10, women: 30, over: 'in the last 24 h' },
        waiting: { woman: 1, man: 0, nonbinary: 0 },
        day,
      }),
    );
    expect(advice?.text).toMatch(
      /^Women outnumber men 3:1 among arrivals in the last 24 h: waits for women p90 20 minutes \(men 20 seconds\), 1 woman waiting now\. Bring in more men/,
    );
    const [none] = recommendations(input({ arrivals: { men: 12, women: 0, over: 'in the last hour' } }));
    expect(none?.text).toMatch(
      /^No women seeking men arrived in the last hour, against 12 men seeking women: too few men were matched/,
    );
  });

  it('names long waits, low success and a match rate that dropped, each with its numbers', () => {
    const advice = recommendations(
      input({
        hour: [cell('nonbinary:woman', 25 * MIN, 6)],
        day: [cell('man:woman', 30_000, 40, 40, 8), cell('woman:man', 30_000, 40, 40, 8)],
        matchRate: { ratio: 0.4, recent: 2, baseline: 5 },
      }),
    );
    expect(advice.map((a) => a.code)).toEqual(['LONG_WAIT', 'LOW_SUCCESS', 'MATCH_RATE_DROP']);
    expect(advice[0]?.text).toContain(
      'Waits for nonbinary people reached p90 25 minutes in the last hour (6 matched)',
    );
    expect(advice[1]?.text).toContain(
      'Only 20% of the 40 matches settled in the last 24 h were liked by both',
    );
    expect(advice[2]?.text).toContain(
      'came at 40% of the hour’s pace (2.0 a minute against 5.0 a minute)'.replace('’', "'"),
    );
  });
});

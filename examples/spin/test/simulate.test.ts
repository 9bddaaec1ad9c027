import { describe, expect, it } from 'vitest';
import { groupKey } from '../src/domain/groups.js';
import {
  BALANCED_MIX,
  IMBALANCED_MIX,
  mixStreams,
  seededRandom,
  simulateArrivals,
} from '../src/domain/simulate.js';

const HOUR = 3_600_000;

describe('simulateArrivals', () => {
  it('is deterministic: the same seed gives the same arrivals, another seed others', () => {
    const options = { phases: [{ durationMs: HOUR, streams: mixStreams(BALANCED_MIX, 5) }] };
    expect(simulateArrivals({ seed: 7, ...options })).toEqual(simulateArrivals({ seed: 7, ...options }));
    expect(simulateArrivals({ seed: 8, ...options })).not.toEqual(simulateArrivals({ seed: 7, ...options }));
    expect(seededRandom(1)()).toBe(seededRandom(1)());
  });

  it('draws Poisson arrivals at the configured rates, phase by phase, in joinedAt order', () => {
    const arrivals = simulateArrivals({
      seed: 3,
      startAt: 1000,
      phases: [
        { durationMs: 4 * HOUR, streams: mixStreams(IMBALANCED_MIX, 10) },
        { durationMs: 4 * HOUR, streams: mixStreams(IMBALANCED_MIX, 20) },
      ],
    });
    const times = arrivals.map((a) => a.waiter.joinedAt);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(times[0]).toBeGreaterThanOrEqual(1000);
    const first = arrivals.filter((a) => a.waiter.joinedAt < 1000 + 4 * HOUR).length;
    const second = arrivals.length - first;
    // 2,400 and 4,800 expected; a Poisson count is within 4 standard deviations.
    expect(Math.abs(first - 2400)).toBeLessThan(4 * Math.sqrt(2400));
    expect(Math.abs(second - 4800)).toBeLessThan(4 * Math.sqrt(4800));
    const men = arrivals.filter((a) => groupKey(a.waiter) === 'man:woman').length;
    const women = arrivals.filter((a) => groupKey(a.waiter) === 'woman:man').length;
    expect(men / women).toBeGreaterThan(2.7);
    expect(men / women).toBeLessThan(3.3);
    expect(new Set(arrivals.map((a) => a.waiter.userId)).size).toBe(arrivals.length);
  });

  it('gives a share of arrivals infinite patience and the others an exponential one', () => {
    const arrivals = simulateArrivals({
      seed: 4,
      phases: [{ durationMs: 10 * HOUR, streams: mixStreams(BALANCED_MIX, 10) }],
      patience: { stayShare: 0.25, meanMs: 600_000 },
    });
    const stayers = arrivals.filter((a) => a.patienceMs === Infinity).length / arrivals.length;
    expect(stayers).toBeCloseTo(0.25, 1);
    const finite = arrivals.filter((a) => a.patienceMs !== Infinity);
    const mean = finite.reduce((sum, a) => sum + a.patienceMs, 0) / finite.length;
    expect(mean / 600_000).toBeCloseTo(1, 1);
  });
});

import { describe, expect, it } from 'vitest';
import { WaitStats } from '../src/domain/estimate.js';
import {
  erlangCdf,
  erlangQuantile,
  predictiveCdf,
  waitMoments,
  waitPercentiles,
} from '../src/domain/quantiles.js';
import type { Group, WaitEstimate } from '../src/domain/types.js';
import { formatDuration, formatFrequency, formatRange, formatRatio, ordinal } from '../src/domain/wording.js';

const MINUTE = 60_000;
const straightMen: Group = { gender: 'man', seeking: ['woman'] };
const straightWomen: Group = { gender: 'woman', seeking: ['man'] };
const gayMen: Group = { gender: 'man', seeking: ['man'] };

describe('Erlang quantiles', () => {
  it('k = 1 is the exponential distribution: p50 = ln 2 / λ, p10 = −ln 0.9 / λ, p90 = ln 10 / λ', () => {
    const rate = 0.5;
    expect(erlangQuantile(1, rate, 0.5)).toBeCloseTo(Math.LN2 / rate, 8);
    expect(erlangQuantile(1, rate, 0.1)).toBeCloseTo(-Math.log(0.9) / rate, 8);
    expect(erlangQuantile(1, rate, 0.9)).toBeCloseTo(Math.log(10) / rate, 8);
  });

  it('matches known values: Erlang(2) CDF in closed form, Erlang(3, 1) percentiles from χ²(6) tables', () => {
    for (const t of [0.1, 1, 2.5, 7]) expect(erlangCdf(2, 1, t)).toBeCloseTo(1 - Math.exp(-t) * (1 + t), 12);
    // Erlang(k, λ) = χ²(2k) / 2λ; χ²(6): 10% 2.2041, 50% 5.3481, 90% 10.6446.
    expect(erlangQuantile(3, 1, 0.1)).toBeCloseTo(2.2041 / 2, 3);
    expect(erlangQuantile(3, 1, 0.5)).toBeCloseTo(5.3481 / 2, 3);
    expect(erlangQuantile(3, 1, 0.9)).toBeCloseTo(10.6446 / 2, 3);
    // Scale: twice the rate, half the time.
    expect(erlangQuantile(3, 2, 0.5)).toBeCloseTo(5.3481 / 4, 3);
  });

  it('does not underflow for a long line (k = 1000: the median is close to k − 1/3)', () => {
    expect(erlangCdf(1000, 1, 1000)).toBeGreaterThan(0.5);
    expect(erlangCdf(1000, 1, 1000)).toBeLessThan(0.52);
    expect(erlangQuantile(1000, 1, 0.5)).toBeCloseTo(1000 - 1 / 3, 1);
  });

  it('widens the range when the rate rests on few matches, and tends to Erlang as they grow', () => {
    const erlang = waitPercentiles(4, Infinity, 8);
    const many = waitPercentiles(4, 1e6, 8);
    const few = waitPercentiles(4, 5, 8);
    expect(many.p10).toBeCloseTo(erlang.p10, 2);
    expect(many.p90).toBeCloseTo(erlang.p90, 2);
    expect(few.p10).toBeLessThan(erlang.p10);
    expect(few.p90).toBeGreaterThan(erlang.p90);
    expect(predictiveCdf(4, 5, 8, 0)).toBe(0);
  });

  it('switches to the approximation above k = 20 without a jump (within 0.5% of the exact sums)', () => {
    for (const samples of [5, 15, Infinity]) {
      const approximate = waitPercentiles(21, samples, 1);
      const exact = (p: number): number => {
        let lo = 0;
        let hi = 10;
        for (let i = 0; i < 100; i += 1) {
          const mid = (lo + hi) / 2;
          const cdf = Number.isFinite(samples) ? predictiveCdf(21, samples, 1, mid) : erlangCdf(21, 21, mid);
          if (cdf < p) lo = mid;
          else hi = mid;
        }
        return lo;
      };
      expect(approximate.p10 / exact(0.1)).toBeCloseTo(1, 2);
      expect(approximate.p50 / exact(0.5)).toBeCloseTo(1, 2);
      expect(approximate.p90 / exact(0.9)).toBeCloseTo(1, 2);
    }
  });

  it('shortens the wait when people ahead leave, matching the stage-by-stage sums', () => {
    expect(waitMoments(3, 0.5, 0)).toEqual({ mean: 8, variance: 16, shape: 4 });
    const [ahead, rate, leaveRate] = [50, 1, 0.05];
    let mean = 0;
    let variance = 0;
    for (let m = 0; m <= ahead; m += 1) {
      mean += 1 / (rate + leaveRate * m);
      variance += 1 / (rate + leaveRate * m) ** 2;
    }
    const moments = waitMoments(ahead, rate, leaveRate);
    expect(moments.mean).toBeCloseTo(mean, 8);
    expect(moments.variance).toBeCloseTo(variance, 8);
    expect(moments.mean).toBeLessThan(51);
  });
});

describe('wording', () => {
  it('rounds durations for reading: seconds under 2 minutes, minutes under 2 hours, then hours', () => {
    expect(formatDuration(300)).toBe('1 second');
    expect(formatDuration(7_400)).toBe('7 seconds');
    expect(formatDuration(43_000)).toBe('45 seconds');
    expect(formatDuration(92_000)).toBe('90 seconds');
    expect(formatDuration(118_000)).toBe('2 minutes');
    expect(formatDuration(7.4 * MINUTE)).toBe('7 minutes');
    expect(formatDuration(47 * MINUTE)).toBe('45 minutes');
    expect(formatDuration(150 * MINUTE)).toBe('2.5 hours');
    expect(formatRange(2 * MINUTE, 5 * MINUTE)).toBe('2–5 minutes');
    expect(formatRange(MINUTE, 3 * MINUTE)).toBe('60 seconds to 3 minutes');
    expect(formatRange(40_000, 3 * MINUTE)).toBe('40 seconds to 3 minutes');
    expect(formatRange(400, 90_000)).toBe('up to 90 seconds');
    expect(formatRange(5 * MINUTE, 5.2 * MINUTE)).toBe('about 5 minutes');
  });

  it('says rates, ratios and places in words', () => {
    expect(formatFrequency(1 / (2 * MINUTE))).toBe('about once every 2 minutes');
    expect(formatFrequency(1 / MINUTE)).toBe('about once every 60 seconds');
    expect(formatFrequency(1 / (3 * MINUTE))).toBe('about once every 3 minutes');
    expect(formatFrequency(3 / MINUTE)).toBe('about 3 times a minute');
    expect(formatRatio(2.96)).toBe('3:1');
    expect(formatRatio(2.4)).toBe('2.5:1');
    expect(formatRatio(12.3)).toBe('12:1');
    expect([1, 2, 3, 4, 11, 12, 13, 21, 22, 101].map(ordinal)).toEqual([
      '1st',
      '2nd',
      '3rd',
      '4th',
      '11th',
      '12th',
      '13th',
      '21st',
      '22nd',
      '101st',
    ]);
  });
});

/**
 * A steady queue: straight men always waiting, a woman arriving every `everyMs` from `from` to
 * `until` and matched at once with the longest-waiting man, and a man arriving in his place.
 */
function steady(stats: WaitStats, group: Group, from: number, until: number, everyMs: number): void {
  stats.arrived(group, from);
  stats.arrived(group, from);
  for (let at = from + everyMs; at <= until; at += everyMs) {
    stats.arrived(straightWomen, at);
    stats.matched(straightWomen, at, 0);
    stats.matched(group, at, 5 * MINUTE);
    stats.arrived(group, at);
  }
}

function expectShown(estimate: WaitEstimate): void {
  expect(estimate.sentence).not.toMatch(/-1|NaN|Infinity|undefined|null/);
  expect(estimate.sentence).toMatch(/^[A-Z][^]*\.$/);
  expect(estimate.sentence.trim().toLowerCase()).not.toBe('unknown');
}

describe('WaitStats', () => {
  it('knows nothing without history, says so with the position, and gives no figures', () => {
    const stats = new WaitStats({ since: 0 });
    const estimate = stats.estimate(straightMen, 3, 10 * MINUTE);
    expect(estimate).toMatchObject({
      estimateKnown: false,
      p10Ms: null,
      p50Ms: null,
      p90Ms: null,
      sampleSize: 0,
      reason: 'NO_RECENT_MATCHES',
    });
    expect(estimate.sentence).toBe(
      'No estimate: nobody seeking your match has been matched in the last 10 minutes ' +
        '(none in the 10 minutes observed). You are 3rd in line.',
    );
    expectShown(estimate);
  });

  it('says how long the group has been quiet once its matches leave the window', () => {
    const stats = new WaitStats({ since: 0 });
    steady(stats, straightMen, 0, 20 * MINUTE, MINUTE);
    const estimate = stats.estimate(straightMen, 1, 70 * MINUTE);
    expect(estimate.reason).toBe('NO_RECENT_MATCHES');
    expect(estimate.sentence).toContain('in the last 30 minutes (the last 50 minutes ago)');
    expect(estimate.sentence).toContain('You are next in line.');
  });

  it('holds back a range on too few matches, saying how many there were', () => {
    const stats = new WaitStats({ since: 0 });
    steady(stats, straightMen, 0, 4 * MINUTE, 2 * MINUTE);
    const estimate = stats.estimate(straightMen, 2, 5 * MINUTE);
    expect(estimate).toMatchObject({
      estimateKnown: false,
      p50Ms: null,
      sampleSize: 2,
      reason: 'NOT_ENOUGH_DATA',
    });
    expect(estimate.sentence).toBe(
      'No estimate yet: only 2 people seeking your match had to wait for a partner in the last 5 minutes, ' +
        'too few to give a range (2 matched in all, the last 60 seconds ago). You are 2nd in line.',
    );
  });

  it('with matches but none who had to wait, says everyone was paired at once (never "only 0 people")', () => {
    const stats = new WaitStats({ since: 0 });
    for (let at = MINUTE; at <= 4 * MINUTE; at += MINUTE) {
      stats.arrived(straightMen, at);
      stats.matched(straightMen, at, 0);
    }
    const estimate = stats.estimate(straightMen, 1, 5 * MINUTE);
    expect(estimate).toMatchObject({ estimateKnown: false, sampleSize: 0, reason: 'NOT_ENOUGH_DATA' });
    expect(estimate.sentence).toBe(
      'No estimate yet: everyone seeking your match in the last 5 minutes was paired at once, a partner ' +
        'already waiting (4 matched, the last 60 seconds ago), so there is no wait to go by. You are next in line.',
    );
    expectShown(estimate);
  });

  it('gives a range from the recent pace and the people ahead, and says both', () => {
    const stats = new WaitStats({ since: 0 });
    steady(stats, straightMen, 0, 30 * MINUTE, 2 * MINUTE);
    // A minute after the last match: halfway between two (right at one, the pace reads high).
    const estimate = stats.estimate(straightMen, 4, 31 * MINUTE);
    expect(estimate.estimateKnown).toBe(true);
    expect(estimate.reason).toBe('PARTNERS_AHEAD');
    expect(estimate.sampleSize).toBe(15);
    // Four matches at one every 2 minutes: 8 minutes on average.
    const { p10Ms, p50Ms, p90Ms } = estimate as { p10Ms: number; p50Ms: number; p90Ms: number };
    expect(p50Ms).toBeGreaterThan(7 * MINUTE);
    expect(p50Ms).toBeLessThan(9 * MINUTE);
    expect(p10Ms).toBeLessThan(p50Ms);
    expect(p90Ms).toBeGreaterThan(p50Ms);
    expect(estimate.sentence).toMatch(
      /^Likely \d+–\d+ minutes: 3 people seeking your match are ahead of you; a partner for your group comes along about once every (1[01]0 seconds|2 minutes)\.$/,
    );
    const next = stats.estimate(straightMen, 1, 31 * MINUTE);
    expect(next.reason).toBe('NEXT_IN_LINE');
    expect(next.sentence).toMatch(/^Likely .+: you are next in line; a partner for your group comes along/);
    expectShown(next);
  });

  it('explains an imbalance with the live ratio', () => {
    const stats = new WaitStats({ since: 0 });
    for (let minute = 0; minute < 20; minute += 1) {
      for (let i = 0; i < 3; i += 1) stats.arrived(straightMen, minute * MINUTE + i * 1000);
      stats.arrived(straightWomen, minute * MINUTE + 5000);
      stats.matched(straightWomen, minute * MINUTE + 5500, 500);
      stats.matched(straightMen, minute * MINUTE + 5500, 3 * MINUTE);
    }
    const estimate = stats.estimate(straightMen, 12, 20 * MINUTE);
    expect(estimate.reason).toBe('IMBALANCE');
    expect(estimate.sentence).toContain(
      'men outnumber women 3:1 among recent arrivals; 11 people seeking your match are ahead of you; ' +
        'a partner for your group comes along about once every 60 seconds.',
    );
    expectShown(estimate);
    // The women's side is not the one waiting for partners: no imbalance is claimed for them.
    expect(stats.estimate(straightWomen, 1, 20 * MINUTE, { partnersWaiting: 40 }).reason).toBe(
      'PARTNER_WAITING',
    );
  });

  it('says a partner is waiting when one is, also for a group seeking its own kind', () => {
    const stats = new WaitStats({ since: 0, matchIntervalMs: 1000 });
    expect(stats.estimate(straightMen, 1, 0, { partnersWaiting: 1 })).toEqual({
      estimateKnown: true,
      p10Ms: 0,
      p50Ms: 500,
      p90Ms: 1000,
      sampleSize: 0,
      reason: 'PARTNER_WAITING',
      sentence: 'A compatible partner is waiting: you will be matched within 1 second.',
    });
    // Two partners waiting but three rivals ahead: they take them first.
    expect(stats.estimate(straightMen, 4, 0, { partnersWaiting: 2 }).reason).not.toBe('PARTNER_WAITING');
    // A gay man who finds another waiting: that one is his partner, not a rival ahead of him.
    expect(stats.estimate(gayMen, 2, 0, { partnersWaiting: 1 }).reason).toBe('PARTNER_WAITING');
  });

  it('follows a change of pace within minutes, and forgets what is older than the window', () => {
    const stats = new WaitStats({ since: 0 });
    steady(stats, straightMen, 0, 30 * MINUTE, 2 * MINUTE);
    expect(stats.rates(straightMen, 31 * MINUTE).servedPerBusyMinute).toBeCloseTo(0.5, 1);
    steady(stats, straightMen, 30 * MINUTE, 40 * MINUTE, MINUTE / 2);
    expect(stats.rates(straightMen, 40 * MINUTE).servedPerBusyMinute).toBeGreaterThan(1.4);
    // An event older than the window is ignored; one inside it counts.
    const before = stats.rates(straightMen, 40 * MINUTE).matchesInWindow;
    stats.matched(straightMen, 5 * MINUTE, MINUTE);
    stats.matched(straightMen, 39 * MINUTE, MINUTE);
    expect(stats.rates(straightMen, 40 * MINUTE).matchesInWindow).toBe(before + 1);
  });

  it('takes the pace from the time someone waits: on the short side, how fast partners come, not how often it arrives', () => {
    // Women arrive once a minute and nearly always find a man waiting. One in five finds none and
    // waits 20 s for the next man: that, not one a minute, is what a waiting woman can expect.
    const stats = new WaitStats({ since: 0 });
    for (let minute = 0; minute < 30; minute += 1) {
      const at = minute * MINUTE;
      for (let i = 0; i < 3; i += 1) stats.arrived(straightMen, at + i * 20_000);
      stats.arrived(straightWomen, at);
      const waits = minute % 5 === 4;
      stats.matched(straightWomen, waits ? at + 20_000 : at, waits ? 20_000 : 0);
      stats.matched(straightMen, waits ? at + 20_000 : at, waits ? 0 : 5 * MINUTE);
    }
    const rates = stats.rates(straightWomen, 30 * MINUTE);
    expect(rates.matchesPerMinute).toBeCloseTo(1, 0);
    expect(rates.servedPerBusyMinute).toBeCloseTo(3, 0);
    const estimate = stats.estimate(straightWomen, 1, 30 * MINUTE);
    expect(estimate).toMatchObject({ estimateKnown: true, reason: 'NEXT_IN_LINE', sampleSize: 6 });
    expect(estimate.p50Ms).toBeLessThan(30_000);
    expect(estimate.sentence).toContain('a partner for your group comes along about 3 times a minute');
  });

  it('counts a match made at this very moment, also on a bucket boundary', () => {
    const stats = new WaitStats({ since: 0 });
    stats.arrived(straightMen, 9 * MINUTE);
    stats.matched(straightMen, 10 * MINUTE, MINUTE);
    expect(stats.rates(straightMen, 10 * MINUTE).matchesInWindow).toBe(1);
    expect(stats.rates(straightMen, 10 * MINUTE).servedInWindow).toBe(1);
  });

  it('counts people ahead who leave: the same line moves faster when many give up', () => {
    const patient = new WaitStats({ since: 0 });
    const leaving = new WaitStats({ since: 0 });
    for (const stats of [patient, leaving]) steady(stats, straightMen, 0, 30 * MINUTE, MINUTE);
    for (let at = MINUTE; at <= 30 * MINUTE; at += MINUTE) leaving.left(straightMen, at, 10 * MINUTE);
    const slow = patient.estimate(straightMen, 30, 30 * MINUTE).p50Ms as number;
    const fast = leaving.estimate(straightMen, 30, 30 * MINUTE).p50Ms as number;
    expect(fast).toBeLessThan(slow * 0.8);
  });

  it('never shows a bare number, -1 or a lone "unknown", whatever the history', () => {
    const stats = new WaitStats({ since: 0 });
    const sentences: WaitEstimate[] = [];
    for (let minute = 0; minute <= 60; minute += 5) {
      if (minute < 40) steady(stats, straightMen, minute * MINUTE, (minute + 5) * MINUTE, 90_000);
      for (const position of [1, 2, 5, 40, 2000]) {
        sentences.push(stats.estimate(straightMen, position, (minute + 5) * MINUTE));
        sentences.push(stats.estimate(gayMen, position, (minute + 5) * MINUTE));
      }
    }
    for (const estimate of sentences) {
      expectShown(estimate);
      if (estimate.estimateKnown) expect(estimate.p10Ms).toBeLessThanOrEqual(estimate.p90Ms as number);
      else expect([estimate.p10Ms, estimate.p50Ms, estimate.p90Ms]).toEqual([null, null, null]);
    }
    expect(new Set(sentences.map((e) => e.reason))).toEqual(
      new Set(['NOT_ENOUGH_DATA', 'NO_RECENT_MATCHES', 'PARTNERS_AHEAD', 'NEXT_IN_LINE']),
    );
  });
});

// The statistics and the judgement of leak detection, as pure functions: the t quantiles against
// published table values, the least-squares fit against a worked example, and the detector driven by
// a fake clock and fake signals (its real signals are tested in leaks.test.ts with real processes).
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { judgeWindow, LeakDetector } from '../src/leaks/detector.js';
import { announceResourceStep } from '../src/parts/steps.js';
import { LogCapture } from './helpers/app.js';
import type { Checkouts } from '../src/store/checkouts.js';
import { fitSlope, slopeInterval, tCdf, tQuantile } from '../src/leaks/stats.js';

describe('tQuantile', () => {
  it('matches the table of Student t critical values', () => {
    // Two-sided 95 % (p = 0.975), one-sided 95 % and 99.5 %, from standard tables.
    for (const [p, df, t] of [
      [0.975, 1, 12.7062],
      [0.975, 2, 4.3027],
      [0.975, 5, 2.5706],
      [0.975, 10, 2.2281],
      [0.975, 30, 2.0423],
      [0.975, 120, 1.9799],
      [0.95, 8, 1.8595],
      [0.995, 3, 5.8409],
    ] as const)
      expect(tQuantile(p, df), `t(${p}, ${df})`).toBeCloseTo(t, 3);
    expect(tQuantile(0.975, 1e7)).toBeCloseTo(1.95996, 4);
    expect(tQuantile(0.025, 10)).toBeCloseTo(-2.2281, 3);
    expect(tQuantile(0.5, 4)).toBe(0);
  });

  it('inverts the distribution function', () => {
    for (const df of [1, 3, 7, 25])
      for (const p of [0.6, 0.9, 0.99]) expect(tCdf(tQuantile(p, df), df)).toBeCloseTo(p, 9);
    expect(() => tQuantile(1, 3)).toThrow(RangeError);
    expect(() => tQuantile(0.9, 0)).toThrow(RangeError);
  });
});

describe('fitSlope', () => {
  it('fits the least-squares line and the standard error of its slope', () => {
    // Worked by hand: x̄ = 3, ȳ = 6.02, Sxx = 10, Sxy = 19.9, SSE = 0.107.
    const fit = fitSlope([1, 2, 3, 4, 5], [2.1, 3.9, 6.2, 7.8, 10.1]);
    expect(fit?.slope).toBeCloseTo(1.99, 10);
    expect(fit?.intercept).toBeCloseTo(0.05, 10);
    expect(fit?.slopeStdErr).toBeCloseTo(Math.sqrt(0.107 / 3 / 10), 10);
    // 95 % interval: 1.99 ± 3.1824 · 0.059722.
    const interval = fit === undefined ? undefined : slopeInterval(fit);
    expect(interval?.lower).toBeCloseTo(1.99 - 3.18245 * 0.0597216, 4);
    expect(interval?.upper).toBeCloseTo(1.99 + 3.18245 * 0.0597216, 4);
  });

  it('has no answer for fewer than three points or a single x', () => {
    expect(fitSlope([1, 2], [1, 2])).toBeUndefined();
    expect(fitSlope([4, 4, 4], [1, 2, 3])).toBeUndefined();
    expect(fitSlope([1, 2, 3], [5, 5, 5])).toEqual({ n: 3, slope: 0, intercept: 5, slopeStdErr: 0 });
  });
});

/** Points every 10 s for `minutes`, `perMin` growth plus a deterministic ±`noise` wobble. */
function series(minutes: number, perMin: number, noise: number): { at: number; value: number }[] {
  return Array.from({ length: minutes * 6 + 1 }, (_, i) => ({
    at: i * 10_000,
    value: 100e6 + (perMin * i) / 6 + noise * Math.sin(i * 2.1),
  }));
}
const judge = { budgetPerMin: 1_048_576, windowMs: 600_000, minSamples: 10, watchedMs: 600_000 };

describe('judgeWindow', () => {
  it('suspects growth whose lower bound is above the budget, not noise around a level', () => {
    expect(judgeWindow('heap_after_gc', series(10, 3_000_000, 2_000_000), judge).suspected).toBe(true);
    const flat = judgeWindow('heap_after_gc', series(10, 0, 5_000_000), judge);
    expect(flat.suspected).toBe(false);
    expect(flat.slopePerMin).toBeDefined();
  });

  it('does not suspect growth that is only near the budget, or too uncertain', () => {
    // The estimate is above the budget, but its lower bound is not.
    const near = judgeWindow('heap_after_gc', series(10, 1_200_000, 8_000_000), judge);
    expect(near.slopePerMin ?? 0).toBeGreaterThan(judge.budgetPerMin);
    expect(near.lowerPerMin ?? Infinity).toBeLessThan(judge.budgetPerMin);
    expect(near.suspected).toBe(false);
  });

  it('needs a watched window and enough samples', () => {
    const growing = series(10, 5_000_000, 0);
    expect(judgeWindow('heap_after_gc', growing, { ...judge, watchedMs: 300_000 }).suspected).toBe(false);
    expect(judgeWindow('heap_after_gc', growing.slice(0, 5), { ...judge, minSamples: 10 }).suspected).toBe(
      false,
    );
  });
});

describe('LeakDetector', () => {
  function detector(
    read: () => Record<string, number>,
    opts: { checkoutHeldMs?: number; logger?: pino.Logger } = {},
  ) {
    let now = 1_000_000;
    const registry = new Registry();
    const leaks = new LeakDetector({
      registry,
      intervalMs: 10_000,
      windowMs: 120_000,
      warmupMs: 30_000,
      now: () => now,
      read,
      ...opts,
    });
    const advance = (ms: number) => (now += ms);
    return { leaks, registry, advance };
  }

  it('reports a growing signal once a window was watched, in health and the gauges; the flag turns it off', async () => {
    let handles = 50;
    let tick = 0;
    const { leaks, registry, advance } = detector(() => ({
      handles: (handles += 12),
      listeners: 7 + (tick++ % 2),
    }));
    const states: string[] = [];
    for (let i = 0; i < 20; i++) {
      advance(10_000);
      leaks.sampleNow();
      states.push(leaks.health().status);
    }
    // 3 samples of warm-up, then 120 s · 0.9 watched before a verdict.
    expect(states.slice(0, 13)).toEqual(Array(13).fill('pass'));
    expect(states.at(-1)).toBe('warn');
    const health = leaks.health();
    expect(health.output).toMatch(
      /handles grows 72\.00\/min \(95 % lower bound 72\.00\/min > budget 5\.00\/min/,
    );
    expect(health.output).toContain('active handles by type');
    expect(health.output).not.toContain('listeners');
    const metrics = await registry.metrics();
    expect(metrics).toContain('bulwark_leak_suspected{signal="handles"} 1');
    expect(metrics).toContain('bulwark_leak_suspected{signal="listeners"} 0');
    expect(Number(/bulwark_leak_slope\{signal="handles"\} (\S+)/.exec(metrics)?.[1])).toBeCloseTo(1.2, 9);

    leaks.enabled = false;
    expect(leaks.health()).toEqual({ status: 'pass', output: 'leak detection is off (flag bulwark.leaks)' });
    expect(await registry.metrics()).not.toContain('bulwark_leak_suspected{signal="handles"} 1');
    leaks.enabled = true;
    advance(10_000);
    leaks.sampleNow();
    expect(leaks.health().status).toBe('pass');
  });

  it('names the store connections held too long with the stack that took them', () => {
    let now = 0;
    const tracker: Checkouts = {
      size: 1,
      held: (min: number) =>
        now - 5_000 >= min
          ? [
              {
                since: 5_000,
                heldMs: now - 5_000,
                stack: 'at checkout (app.ts:12:3)\nat main (app.ts:40:1)',
                lastQuery: 'begin',
              },
            ]
          : [],
    };
    const { leaks } = detector(() => ({}), { checkoutHeldMs: 30_000 });
    const withPool = new LeakDetector({
      registry: new Registry(),
      checkouts: tracker,
      checkoutHeldMs: 30_000,
      now: () => now,
      read: () => ({}),
    });
    now = 20_000;
    expect(withPool.sampleNow().heldConnections).toEqual([]);
    now = 40_000;
    expect(withPool.sampleNow().heldConnections).toEqual([
      { heldMs: 35_000, stack: 'at checkout (app.ts:12:3)\nat main (app.ts:40:1)', lastQuery: 'begin' },
    ]);
    expect(withPool.health()).toMatchObject({
      status: 'warn',
      output:
        'a store connection is held for 35 s (last query: begin), taken at checkout (app.ts:12:3) < main (app.ts:40:1)',
    });
    // SQLite: no pool, nothing to report.
    expect(leaks.sampleNow().heldConnections).toBeUndefined();
  });

  it('watches afresh the signals a part steps once (a worker thread started), and still sees growth after', () => {
    // The same descriptors in both: flat at 40, a step of 12 (a thread and its connection's files)
    // at the 15th sample, flat again, then growing 3 per sample from the 40th.
    const fds = (i: number) => (i < 15 ? 40 : 52) + Math.max(0, i - 40) * 3;
    let toldAt = 0;
    let untoldAt = 0;
    const log = new LogCapture();
    const told = detector(() => ({ fds: fds(toldAt) }), { logger: pino(log) });
    const untold = detector(() => ({ fds: fds(untoldAt) }));
    told.leaks.start();
    const states: { told: string; untold: string }[] = [];
    try {
      for (let i = 0; i < 60; i++) {
        if (i === 15)
          announceResourceStep({ what: 'a test worker started', signals: ['fds', 'rss', 'other'] });
        told.advance(10_000);
        untold.advance(10_000);
        toldAt = untoldAt = i;
        told.leaks.sampleNow();
        untold.leaks.sampleNow();
        states.push({ told: told.leaks.health().status, untold: untold.leaks.health().status });
      }
    } finally {
      told.leaks.close();
    }
    // Unannounced, the step reads as growth while it is inside the window; announced, it never does.
    expect(states.slice(15, 40).some((s) => s.untold === 'warn')).toBe(true);
    expect(states.slice(0, 40).every((s) => s.told === 'pass')).toBe(true);
    // Growth after the step is still found, once a window was watched from the step.
    expect(states.at(-1)).toEqual({ told: 'warn', untold: 'warn' });
    expect(told.leaks.health().output).toMatch(/^fds grows 18\.00\/min/);
    // Only the signals leak detection knows, named in the log; then the growth, once.
    expect(log.lines.map((l) => l['msg'])).toEqual([
      'leaks: rss, fds watched afresh: a test worker started',
      expect.stringMatching(/^leak suspected: fds grows/),
    ]);
  });
});

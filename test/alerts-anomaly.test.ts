// Anomaly rules: the baseline and band as pure functions, and the engine judging a real metrics
// history in the store (SQLite), fed a week of seasonal data and then live samples: normal data
// never fires, a spike fires after forMs and resolves when it ends, and a series without enough
// history has no baseline and says why.
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { anomalyJudge, anomalyLimits, ewma, median, robustSigma } from '../src/alerts/anomaly.js';
import { historyReader, validateAlertsConfig } from '../src/alerts/config.js';
import { AlertEngine } from '../src/alerts/engine.js';
import type { AlertRule } from '../src/alerts/rules.js';
import { alertPage } from '../src/alerts/views.js';
import { isBulwarkError } from '../src/errors/index.js';
import { MetricsHistory } from '../src/metrics/history.js';
import { PointStore } from '../src/metrics/history-store.js';
import { createStore } from '../src/runtime/store.js';
import type { Store } from '../src/store/index.js';

const DAY = 86_400_000;
const rule: AlertRule = {
  id: 'orders-anomaly',
  kind: 'anomaly',
  series: 'app.orders_per_s',
  forMs: 60_000,
  severity: 'warning',
  summary: 'Orders per second left their usual band',
};

describe('anomaly baseline and band (pure)', () => {
  it('median, robust sigma and the time-weighted EWMA', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
    // MAD of [1..5] around 3 is 1.
    expect(robustSigma([1, 2, 3, 4, 5])).toBeCloseTo(1.4826, 4);
    // More than half equal: MAD 0, the mean absolute deviation (6/5) is used.
    expect(robustSigma([0, 0, 0, 0, 6])).toBeCloseTo(1.2533 * 1.2, 4);
    expect(robustSigma([7, 7, 7])).toBe(0);
    // A point one half-life old weighs half the newest one.
    expect(
      ewma(
        [
          { at: 0, value: 10 },
          { at: 1_000, value: 40 },
        ],
        1_000,
        1_000,
      ),
    ).toBeCloseTo(30, 10);
  });

  it('blends the seasonal median with the EWMA and bands it by k robust deviations', () => {
    const recent = Array.from({ length: 40 }, (_, i) => ({
      at: i * 10_000,
      value: 100 + (i % 2 === 0 ? 2 : -2),
    }));
    const now = 400_000;
    const { limits, detail } = anomalyLimits(
      { ...rule, direction: 'above' },
      [120, 118, 122, 119],
      recent,
      now,
    );
    // EWMA ≈ 100, seasonal median 119.5: baseline ≈ 109.75.
    expect(detail.baseline).toBeCloseTo(0.5 * 119.5 + 0.5 * ewma(recent, now, 900_000), 9);
    // σ = max(1.4826 · 1.5, 1.4826 · 2) (seasonal MAD 1.5, recent MAD 2): band 3σ ≈ 8.9.
    expect(detail.band).toBeCloseTo(3 * 1.4826 * 2, 6);
    expect(limits.fireAbove).toBeCloseTo((detail.baseline ?? 0) + 3 * 1.4826 * 2, 6);
    expect(limits.clearAbove).toBeCloseTo((detail.baseline ?? 0) + 2 * 1.4826 * 2, 6);
    expect(limits.fireBelow).toBeUndefined();
  });

  it('keeps a minimum band on a flat series, and has no baseline without enough history', () => {
    const flat = Array.from({ length: 40 }, (_, i) => ({ at: i * 10_000, value: 0 }));
    const both = anomalyLimits({ ...rule, minBand: 0.01 }, [0, 0, 0], flat, 400_000);
    expect(both.limits).toEqual({
      fireAbove: 0.01,
      clearAbove: (0.01 * 2) / 3,
      fireBelow: -0.01,
      clearBelow: -(0.01 * 2) / 3,
    });
    const ratio = anomalyLimits(
      { ...rule, direction: 'below' },
      [50, 50, 50],
      flat.map((p) => ({ ...p, value: 50 })),
      400_000,
    );
    expect(ratio.limits).toEqual({ fireBelow: 50 - 2.5, clearBelow: 50 - (2.5 * 2) / 3 });
    expect(anomalyLimits(rule, [1, 2], flat, 0).detail.reason).toBe(
      'no baseline: 2 of 3 days of history at this time',
    );
    expect(anomalyLimits(rule, [1, 2, 3], flat.slice(0, 10), 0).detail.reason).toBe(
      'no baseline: 10 of 30 recent points',
    );
    // minDays 0: the EWMA alone.
    expect(
      anomalyLimits(
        { ...rule, minDays: 0 },
        [],
        flat.map((p) => ({ ...p, value: 8 })),
        400_000,
      ).detail.baseline,
    ).toBeCloseTo(8, 9);
  });

  it('is validated with the alerting configuration', () => {
    expect(
      validateAlertsConfig({ receivers: [], rules: [{ ...rule, k: 2.5, direction: 'above' }] }, 'alerts')
        .rules,
    ).toHaveLength(1);
    try {
      validateAlertsConfig(
        { receivers: [], rules: [{ ...rule, k: 0, direction: 'up', minDays: 9 }] },
        'alerts',
      );
      expect.unreachable();
    } catch (error) {
      expect(isBulwarkError(error, 'BWK_ERR_ALERTS_CONFIG')).toBe(true);
      const fields = (error as { details: { field: string }[] }).details.map((d) => d.field);
      expect(fields).toEqual(
        expect.arrayContaining(['alerts.rules[0].k', 'alerts.rules[0].direction', 'alerts.rules[0].minDays']),
      );
    }
  });
});

/** The seasonal shape: a daily sine around 100 (± 50), plus a deterministic ± 3 wobble. */
function season(at: number, seed: number): number {
  const noise = Math.sin(seed * 12.9898 + at / 7_919) * 3;
  return 100 + 50 * Math.sin((2 * Math.PI * (at % DAY)) / DAY) + noise;
}

const stores: Store[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

describe('an anomaly rule on a real metrics history', () => {
  it('does not fire on seasonal data, fires on a spike after forMs, resolves after it, and says why it has no baseline', async () => {
    // Noon: where the daily sine falls fastest, the hardest time for a lagging baseline.
    let now = Date.UTC(2026, 11, 3, 12, 0, 0);
    const store = await createStore({ sqliteFile: ':memory:' });
    stores.push(store);
    const history = new MetricsHistory({ store, registry: new Registry(), now: () => now });
    let orders = 0;
    history.register('app.orders_per_s', () => orders);
    history.register('app.signups_per_s', () => 5);
    // A week of minute buckets before the last hour (what the 60 s tier keeps), one day for signups.
    const rows = [];
    for (let at = now - 7 * DAY - 2 * 3_600_000; at < now - 3_600_000; at += 60_000) {
      const v = season(at, at);
      rows.push({
        series: 'app.orders_per_s',
        resolution: 60,
        at,
        count: 6,
        sum: 6 * v,
        min: v,
        max: v,
        last: v,
      });
      if (at > now - DAY - 3_600_000)
        rows.push({
          series: 'app.signups_per_s',
          resolution: 60,
          at,
          count: 6,
          sum: 30,
          min: 5,
          max: 5,
          last: 5,
        });
    }
    await new PointStore(store.db, store.engine).write(rows);
    const signups: AlertRule = { ...rule, id: 'signups-anomaly', series: 'app.signups_per_s' };
    const engine = new AlertEngine({
      store,
      logger: pino({ level: 'silent' }),
      serviceId: 'test',
      instanceId: 'test-1',
      rules: [rule, signups],
      receivers: [],
      read: historyReader(history),
      judge: anomalyJudge(history),
      now: () => now,
    });
    const state = async (id = rule.id) => (await engine.rules()).find((r) => r.rule.id === id);
    /** Live samples every 10 s for `ms`, evaluating each time; the states seen. */
    const run = async (ms: number, value: (at: number) => number): Promise<string[]> => {
      const seen: string[] = [];
      for (const end = now + ms; now < end; now += 10_000) {
        orders = value(now);
        await history.sampleNow();
        await engine.evaluateOnce();
        seen.push((await state())?.status.state ?? '?');
      }
      return seen;
    };
    // The last hour live, at 10 s: the recent points.
    now -= 3_600_000;
    await run(3_600_000, (at) => season(at, at));
    const normal = await run(1_800_000, (at) => season(at, at));
    expect(new Set(normal)).toEqual(new Set(['inactive']));
    const view = await state();
    expect(view?.anomaly?.days).toBe(7);
    expect(view?.anomaly?.baseline).toBeGreaterThan(season(now, 0) - 10);
    expect(view?.anomaly?.baseline).toBeLessThan(season(now, 0) + 10);

    // A spike of +60 (the band is about ±15 here): pending, then firing once forMs has passed.
    const spike = await run(180_000, (at) => season(at, at) + 60);
    expect(spike.slice(0, 2)).not.toContain('firing');
    expect(spike).toContain('pending');
    expect(spike.at(-1)).toBe('firing');
    const firedAfter = spike.indexOf('firing') * 10_000;
    expect(firedAfter).toBeGreaterThanOrEqual(60_000);
    expect(firedAfter).toBeLessThanOrEqual(150_000);
    expect((await state())?.status.transitions).toBe(1);

    const after = await run(300_000, (at) => season(at, at));
    expect(after.at(-1)).toBe('inactive');
    expect((await state())?.status.transitions).toBe(2);

    // One day of signups history: no baseline, never fires, and the state says why.
    const noBaseline = await state('signups-anomaly');
    expect(noBaseline?.status.state).toBe('nodata');
    expect(noBaseline?.anomaly?.reason).toBe('no baseline: 1 of 3 days of history at this time');
    // The admin API's page of rules (the console's Alerts page) shows the same.
    const page = await alertPage(
      {
        db: store.db,
        rules: engine.configuredRules,
        acks: () => Promise.resolve(new Map()),
        silences: () => Promise.resolve([]),
        anomaly: (id) => engine.anomaly(id),
        now,
      },
      { filter: 'all', limit: 10 },
    );
    expect(page.rules.map((r) => [r.id, r.state, r.anomaly?.reason])).toEqual([
      ['orders-anomaly', 'inactive', undefined],
      ['signups-anomaly', 'nodata', 'no baseline: 1 of 3 days of history at this time'],
    ]);
    expect(page.rules[0]?.anomaly?.band).toBeGreaterThan(0);
    await engine.close();
  }, 120_000);
});

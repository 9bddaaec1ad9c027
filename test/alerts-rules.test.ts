import { describe, expect, it } from 'vitest';
import { evaluateRule, initialStatus, type AlertRule, type RuleStatus } from '../src/alerts/rules.js';

const errorRate: AlertRule = {
  id: 'error-rate',
  kind: 'threshold',
  series: 'http.error_ratio{route="*"}',
  fireAbove: 0.05,
  clearAbove: 0.02,
  forMs: 30_000,
  severity: 'critical',
  summary: 'error ratio above 5 %',
};

/** Feeds values at the given times; returns each state and transition. */
function run(rule: AlertRule, steps: [number, number | undefined | Error][]) {
  let status: RuleStatus = initialStatus(0);
  return steps.map(([at, value]) => {
    const result = evaluateRule(rule, status, value, at);
    status = result.status;
    return [result.status.state, result.transition ?? '-'] as const;
  });
}

describe('alert rules', () => {
  it('fires only after the condition held for `for`, once; pending resets when it stops holding', () => {
    expect(
      run(errorRate, [
        [0, 0.01],
        [10_000, 0.08],
        [20_000, 0.01],
        [30_000, 0.09],
        [50_000, 0.09],
        [60_000, 0.1],
        [70_000, 0.2],
      ]),
    ).toEqual([
      ['inactive', '-'],
      ['pending', '-'],
      ['inactive', '-'],
      ['pending', '-'],
      ['pending', '-'],
      ['firing', 'firing'],
      ['firing', '-'],
    ]);
  });

  it('clears only below the clear threshold (hysteresis): no flapping between 2 % and 5 %', () => {
    const states = run({ ...errorRate, forMs: 0 }, [
      [0, 0.06],
      [1, 0.04],
      [2, 0.03],
      [3, 0.021],
      [4, 0.019],
      [5, 0.04],
    ]);
    expect(states).toEqual([
      ['firing', 'firing'],
      ['firing', '-'],
      ['firing', '-'],
      ['firing', '-'],
      ['inactive', 'resolved'],
      ['inactive', '-'],
    ]);
  });

  it('counts transitions (the idempotency key of each notification)', () => {
    let status = initialStatus(0);
    const rule = { ...errorRate, forMs: 0 };
    for (const [at, value] of [
      [0, 0.1],
      [1, 0.0],
      [2, 0.1],
      [3, 0.0],
    ] as const)
      status = evaluateRule(rule, status, value, at).status;
    expect(status.transitions).toBe(4);
  });

  it('below-thresholds work the same way (e.g. a success ratio)', () => {
    const rule: AlertRule = {
      ...errorRate,
      fireAbove: undefined,
      clearAbove: undefined,
      fireBelow: 0.9,
      clearBelow: 0.95,
      forMs: 0,
    };
    expect(
      run(rule, [
        [0, 0.8],
        [1, 0.93],
        [2, 0.96],
      ]).map(([, t]) => t),
    ).toEqual(['firing', '-', 'resolved']);
  });

  it('no data: typed NoData for thresholds (a firing alert keeps firing); the condition itself for absence rules', () => {
    expect(
      run({ ...errorRate, forMs: 0 }, [
        [0, undefined],
        [1, 0.1],
        [2, undefined],
        [3, 0.0],
      ]),
    ).toEqual([
      ['nodata', '-'],
      ['firing', 'firing'],
      ['firing', '-'],
      ['inactive', 'resolved'],
    ]);
    const heartbeat: AlertRule = {
      id: 'jobs-stopped',
      kind: 'absence',
      series: 'app.jobs_done',
      forMs: 60_000,
      severity: 'warning',
      summary: 'no jobs done',
    };
    expect(
      run(heartbeat, [
        [0, 3],
        [10_000, undefined],
        [80_000, undefined],
        [90_000, 1],
      ]).map(([, t]) => t),
    ).toEqual(['-', '-', 'firing', 'resolved']);
  });

  it('an evaluation error is its own state and does not resolve a firing alert', () => {
    expect(
      run({ ...errorRate, forMs: 0 }, [
        [0, new Error('store down')],
        [1, 0.1],
        [2, new Error('store down')],
      ]),
    ).toEqual([
      ['error', '-'],
      ['firing', 'firing'],
      ['firing', '-'],
    ]);
  });
});

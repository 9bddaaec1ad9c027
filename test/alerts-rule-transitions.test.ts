// The alert rule state machine at its edges: exactly when a threshold fires and clears, what a
// rule's status says (since when, which value, how many transitions: the latter is part of every
// notification's idempotency key), and how no data and read errors interleave with firing.
import { describe, expect, it } from 'vitest';
import { evaluateRule, initialStatus, type AlertRule, type RuleStatus } from '../src/alerts/rules.js';

const above: AlertRule = {
  id: 'latency',
  kind: 'threshold',
  series: 'http.p99_ms{route="*"}',
  fireAbove: 500,
  clearAbove: 300,
  severity: 'warning',
  summary: 'p99 above 500 ms',
};

const below: AlertRule = {
  id: 'success',
  kind: 'threshold',
  series: 'http.success_ratio{route="*"}',
  fireBelow: 0.9,
  clearBelow: 0.95,
  severity: 'critical',
  summary: 'success ratio below 90 %',
};

const absence: AlertRule = {
  id: 'heartbeat',
  kind: 'absence',
  series: 'app.heartbeat',
  forMs: 60_000,
  severity: 'warning',
  summary: 'no heartbeat',
};

type Step = [at: number, value: number | undefined | Error];

/** Feeds the steps from a fresh rule; returns every evaluation. */
function run(rule: AlertRule, steps: Step[], start: RuleStatus = initialStatus(0)) {
  let status = start;
  return steps.map(([at, value]) => {
    const evaluation = evaluateRule(rule, status, value, at);
    status = evaluation.status;
    return evaluation;
  });
}

/** Only the transitions ('-' for none), the part a receiver sees. */
const notified = (rule: AlertRule, steps: Step[]) => run(rule, steps).map((e) => e.transition ?? '-');

describe('thresholds at their exact values', () => {
  it('fireAbove is strictly above: the threshold value itself does not fire', () => {
    expect(notified(above, [[0, 500]])).toEqual(['-']);
    expect(notified(above, [[0, 500.5]])).toEqual(['firing']);
  });

  it('a firing alert stays firing at the clear value itself and resolves just below it', () => {
    expect(
      notified(above, [
        [0, 600],
        [1, 300],
        [2, 299],
      ]),
    ).toEqual(['firing', '-', 'resolved']);
  });

  it('without clearAbove it clears at fireAbove: at the value it keeps firing, below it resolves', () => {
    const rule = { ...above, clearAbove: undefined };
    expect(
      notified(rule, [
        [0, 600],
        [1, 500],
        [2, 499],
      ]),
    ).toEqual(['firing', '-', 'resolved']);
  });

  it('fireBelow is strictly below; a firing alert holds at clearBelow and resolves above it', () => {
    expect(notified(below, [[0, 0.9]])).toEqual(['-']);
    expect(
      notified(below, [
        [0, 0.89],
        [1, 0.95],
        [2, 0.951],
      ]),
    ).toEqual(['firing', '-', 'resolved']);
  });

  it('without clearBelow it clears at fireBelow', () => {
    const rule = { ...below, clearBelow: undefined };
    expect(
      notified(rule, [
        [0, 0.5],
        [1, 0.9],
        [2, 0.91],
      ]),
    ).toEqual(['firing', '-', 'resolved']);
  });

  it('a band (above and below in one rule) fires on either side and clears inside it', () => {
    const band: AlertRule = { ...above, fireAbove: 100, clearAbove: 90, fireBelow: 10, clearBelow: 20 };
    expect(notified(band, [[0, 50]])).toEqual(['-']);
    expect(
      notified(band, [
        [0, 101],
        [1, 50],
        [2, 5],
        [3, 15],
        [4, 50],
      ]),
    ).toEqual(['firing', 'resolved', 'firing', '-', 'resolved']);
  });

  it('a threshold rule without any threshold never fires', () => {
    const none: AlertRule = { ...above, fireAbove: undefined, clearAbove: undefined };
    expect(
      notified(none, [
        [0, 1e9],
        [1, -1e9],
      ]),
    ).toEqual(['-', '-']);
  });
});

describe('for: how long the condition must hold', () => {
  it('fires at exactly forMs after the condition started, not a millisecond before', () => {
    const rule = { ...above, forMs: 30_000 };
    const states = run(rule, [
      [1000, 600],
      [30_999, 700],
      [31_000, 650],
    ]);
    expect(states.map((e) => [e.status.state, e.transition ?? '-'])).toEqual([
      ['pending', '-'],
      ['pending', '-'],
      ['firing', 'firing'],
    ]);
    expect(states.map((e) => e.status.since)).toEqual([1000, 1000, 31_000]);
  });

  it('pending starts when the condition starts to hold, not when the rule last changed state', () => {
    const rule = { ...above, forMs: 10_000 };
    const states = run(rule, [
      [0, undefined], // nodata since 0
      [5000, 600], // the condition starts here
      [14_999, 600],
      [15_000, 600],
    ]);
    expect(states.map((e) => e.status.state)).toEqual(['nodata', 'pending', 'pending', 'firing']);
  });

  it('without forMs the first breaching value fires', () => {
    expect(run(above, [[7, 501]])[0]).toMatchObject({
      status: { state: 'firing', since: 7, value: 501, transitions: 1 },
      transition: 'firing',
    });
  });
});

describe("a rule's status", () => {
  it('starts inactive, with no value and no transitions', () => {
    expect(initialStatus(42)).toEqual({ state: 'inactive', since: 42, value: undefined, transitions: 0 });
  });

  it('keeps `since` while the state stays the same, and records each judged value', () => {
    const states = run(
      { ...above, forMs: 0 },
      [
        [10, 100],
        [20, 200],
        [30, 600],
        [40, 700],
        [50, 100],
        [60, 120],
      ],
      initialStatus(0),
    );
    expect(states.map((e) => [e.status.state, e.status.since, e.status.value])).toEqual([
      ['inactive', 0, 100],
      ['inactive', 0, 200],
      ['firing', 30, 600],
      ['firing', 30, 700],
      ['inactive', 50, 100],
      ['inactive', 50, 120],
    ]);
  });

  it('counts a transition for each firing and each resolve, and nothing for pending, nodata or errors', () => {
    const rule = { ...above, forMs: 10 };
    const states = run(rule, [
      [0, 600], // pending
      [5, undefined], // nodata
      [6, new Error('store down')], // error
      [7, 600], // pending again
      [17, 600], // firing
      [18, new Error('store down')],
      [19, undefined],
      [20, 100], // resolved
    ]);
    expect(states.map((e) => e.status.transitions)).toEqual([0, 0, 0, 0, 1, 1, 1, 2]);
  });

  it('a read error while firing keeps the last value; while not firing it has none', () => {
    const [first, second] = run({ ...above, forMs: 0 }, [
      [0, 600],
      [1, new Error('store down')],
    ]);
    expect(first?.status.value).toBe(600);
    expect(second?.status).toMatchObject({ state: 'firing', since: 0, value: 600 });
    expect(second?.transition).toBeUndefined();
    const [error] = run(above, [[5, new Error('store down')]], { ...initialStatus(0), value: 100 });
    expect(error?.status).toEqual({ state: 'error', since: 5, value: undefined, transitions: 0 });
  });

  it('no data while firing keeps it firing with no value; no data otherwise is nodata since then', () => {
    const states = run({ ...above, forMs: 0 }, [
      [0, undefined],
      [3, undefined],
      [4, 600],
      [8, undefined],
    ]);
    expect(states.map((e) => e.status)).toEqual([
      { state: 'nodata', since: 0, value: undefined, transitions: 0 },
      { state: 'nodata', since: 0, value: undefined, transitions: 0 },
      { state: 'firing', since: 4, value: 600, transitions: 1 },
      { state: 'firing', since: 4, value: undefined, transitions: 1 },
    ]);
  });
});

describe('absence rules', () => {
  it('fire after forMs without points, resolve on the first point, and are not fooled by values', () => {
    const states = run(absence, [
      [0, 0], // a point whose value is 0 is still a point
      [10_000, undefined],
      [69_999, undefined],
      [70_000, undefined],
      [80_000, 0],
    ]);
    expect(states.map((e) => [e.status.state, e.transition ?? '-'])).toEqual([
      ['inactive', '-'],
      ['pending', '-'],
      ['pending', '-'],
      ['firing', 'firing'],
      ['inactive', 'resolved'],
    ]);
  });

  it('a read error is not an absence: it neither fires nor resolves', () => {
    const states = run({ ...absence, forMs: 0 }, [
      [0, new Error('store down')],
      [1, undefined],
      [2, new Error('store down')],
    ]);
    expect(states.map((e) => [e.status.state, e.transition ?? '-'])).toEqual([
      ['error', '-'],
      ['firing', 'firing'],
      ['firing', '-'],
    ]);
  });
});

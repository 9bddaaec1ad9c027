// TalliedHistogram against prom-client's own Histogram: the same observations must render the same
// exposition and the same get() values, so /metrics, the metrics history and any scraper cannot tell
// them apart.
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { TalliedHistogram } from '../src/metrics/tallied-histogram.js';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LABELS = ['route', 'method', 'status_class'] as const;

function both() {
  const ours = new Registry();
  const theirs = new Registry();
  const tallied = new TalliedHistogram({
    name: 'http_request_duration_seconds',
    help: 'Request duration.',
    labelNames: LABELS,
    buckets: BUCKETS,
    registers: [ours],
  });
  const histogram = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Request duration.',
    labelNames: LABELS,
    buckets: BUCKETS,
    registers: [theirs],
  });
  return { ours, theirs, tallied, histogram };
}

describe('TalliedHistogram', () => {
  it('renders the same exposition and get() values as prom-client for the same observations', async () => {
    const { ours, theirs, tallied, histogram } = both();
    const sets = [
      { route: '/items/:id', method: 'GET', status_class: '2xx' },
      { route: 'unmatched', method: 'GET', status_class: '4xx' },
      { route: '/items', method: 'POST', status_class: '5xx' },
    ];
    // Values on every bound, between bounds, below the first and above the last.
    const values = [0, 0.0001, ...BUCKETS, ...BUCKETS.map((b) => b * 1.5), 42, 1e-9];
    sets.forEach((labels, n) => {
      const series = tallied.series(labels);
      const child = histogram.labels(labels);
      for (const value of values.slice(n)) {
        series.observe(value);
        child.observe(value);
      }
    });
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
    expect(await ours.metrics()).toMatch(
      /http_request_duration_seconds_bucket\{le="0\.005",route="\/items\/:id",method="GET",status_class="2xx"\} 10\n/,
    );
  });

  it('hands out one series per label set, drops non-finite values and resets with the registry', async () => {
    const { ours, tallied } = both();
    const a = tallied.series({ route: '/a', method: 'GET', status_class: '2xx' });
    expect(tallied.series({ status_class: '2xx', method: 'GET', route: '/a' })).toBe(a);
    expect(tallied.series({ route: '/a', method: 'GET', status_class: '5xx' })).not.toBe(a);
    a.observe(0.002);
    a.observe(Number.NaN);
    a.observe(Number.POSITIVE_INFINITY);
    expect(a.count).toBe(1);
    expect(await ours.metrics()).toContain(
      'http_request_duration_seconds_count{route="/a",method="GET",status_class="2xx"} 1',
    );
    ours.resetMetrics();
    expect(await ours.metrics()).not.toContain('route="/a"');
    a.observe(0.2);
    expect(await ours.metrics()).toContain(
      'http_request_duration_seconds_sum{route="/a",method="GET",status_class="2xx"} 0.2',
    );
  });
});

const FEW_BUCKETS = [0.001, 0.01, 0.1, 1, 10];
const NAME = 'tally_test_seconds';

/** The same histogram twice: prom-client's own, and one fed through tallies. */
function pair() {
  const plain = new Registry();
  const tallied = new Registry();
  const reference = new Histogram({
    name: NAME,
    help: 'h',
    labelNames: ['queue', 'outcome'],
    buckets: FEW_BUCKETS,
    registers: [plain],
  });
  const subject = new TalliedHistogram({
    name: NAME,
    help: 'h',
    labelNames: ['queue', 'outcome'],
    buckets: FEW_BUCKETS,
    registers: [tallied],
  });
  return { plain, tallied, reference, subject };
}

/**
 * The exposition text as sample lines: counts and buckets must be equal; a sum is allowed to differ
 * in its last digits (floating-point additions in another order would).
 */
function expectSame(actual: string, expected: string): void {
  const parse = (text: string) =>
    new Map(
      text
        .split('\n')
        .filter((line) => line !== '' && !line.startsWith('#'))
        .map((line) => {
          const at = line.lastIndexOf(' ');
          return [line.slice(0, at), Number(line.slice(at + 1))] as const;
        }),
    );
  const got = parse(actual);
  const want = parse(expected);
  expect([...got.keys()]).toEqual([...want.keys()]);
  for (const [sample, value] of want) {
    if (sample.includes('_sum'))
      expect(Math.abs(got.get(sample)! - value)).toBeLessThanOrEqual(Math.abs(value) * 1e-12);
    else expect(got.get(sample), sample).toBe(value);
  }
}

/** Values on, just above and just below every bound, 0, and far above the top bound. */
function values(seed: number): number[] {
  const out = [0, 20, 1e6];
  for (const bound of FEW_BUCKETS) out.push(bound, bound * (1 + 1e-9), bound * (1 - 1e-9));
  let x = seed;
  for (let i = 0; i < 500; i += 1) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out.push((x / 2 ** 31) ** 4 * 30); // mostly small values, some above the top bound
  }
  return out;
}

describe('TalliedHistogram, read after read', () => {
  it('reports exactly what prom-client records for the same observations, across reads', async () => {
    const { plain, tallied, reference, subject } = pair();
    const series = [
      { queue: 'a', outcome: 'completed' },
      { queue: 'a', outcome: 'dead' },
      { queue: 'b', outcome: 'completed' },
    ];
    const tallies = series.map((labels) => subject.series(labels));
    const children = series.map((labels) => reference.labels(labels));
    for (const [round, seed] of [7, 11, 13].entries()) {
      values(seed).forEach((value, i) => {
        // Not every series is observed in every round: one appears only from the second read on.
        const k = i % (round === 0 ? 2 : 3);
        tallies[k]!.observe(value);
        children[k]!.observe(value);
      });
      const text = await tallied.metrics();
      expectSame(text, await plain.metrics());
      expect(text).toContain(`${NAME}_count{queue="a",outcome="completed"}`);
      if (round === 0) expect(text).not.toContain('queue="b"');
    }
    // get() (what the metrics history reads) hands the tallies over too.
    tallies[2]!.observe(0.5);
    children[2]!.observe(0.5);
    const count = async (h: { get: Histogram<string>['get'] }) =>
      (await h.get()).values.find((v) => v.metricName === `${NAME}_count` && v.labels['queue'] === 'b')
        ?.value;
    expect(await count(subject)).toBe(await count(reference));
    expect(await count(reference)).toBeGreaterThan(0);
  });

  it('keeps counting after the registry is reset', async () => {
    const { plain, tallied, reference, subject } = pair();
    const tally = subject.series({ queue: 'q', outcome: 'completed' });
    const child = reference.labels({ queue: 'q', outcome: 'completed' });
    tally.observe(0.05);
    child.observe(0.05);
    await tallied.metrics();
    tallied.resetMetrics();
    plain.resetMetrics();
    tally.observe(2);
    child.observe(2);
    const text = await tallied.metrics();
    expectSame(text, await plain.metrics());
    expect(text).toContain(`${NAME}_count{queue="q",outcome="completed"} 1`);
  });

  it('ignores a value that is not a finite number, where prom-client throws', async () => {
    const { tallied, subject } = pair();
    const tally = subject.series({ queue: 'q', outcome: 'completed' });
    tally.observe(Number.NaN);
    tally.observe(Number.POSITIVE_INFINITY);
    tally.observe(0.002);
    const text = await tallied.metrics();
    expect(text).toContain(`${NAME}_count{queue="q",outcome="completed"} 1`);
    expect(text).toContain(`${NAME}_sum{queue="q",outcome="completed"} 0.002`);
  });
});

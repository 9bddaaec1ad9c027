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
    expect(await ours.metrics()).toContain(
      'http_request_duration_seconds_count{route="/a",method="GET",status_class="2xx"} 0',
    );
    a.observe(0.2);
    expect(await ours.metrics()).toContain(
      'http_request_duration_seconds_sum{route="/a",method="GET",status_class="2xx"} 0.2',
    );
  });
});

import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { TalliedHistogram } from '../src/metrics/tally.js';
import { QueueMetrics } from '../src/queue/index.js';

const BUCKETS = [0.001, 0.01, 0.1, 1, 10];
const NAME = 'tally_test_seconds';

/** The same histogram twice: prom-client's own, and one fed through tallies. */
function pair() {
  const plain = new Registry();
  const tallied = new Registry();
  const reference = new Histogram({
    name: NAME,
    help: 'h',
    labelNames: ['queue', 'outcome'],
    buckets: BUCKETS,
    registers: [plain],
  });
  const subject = new TalliedHistogram({
    name: NAME,
    help: 'h',
    labelNames: ['queue', 'outcome'],
    buckets: BUCKETS,
    registers: [tallied],
  });
  return { plain, tallied, reference, subject };
}

/**
 * The exposition text as sample lines: counts and buckets must be equal; a sum may differ in its
 * last digits (the tally adds up a scrape's values before adding them to the stored sum, so the
 * floating-point additions happen in another order).
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
  for (const bound of BUCKETS) out.push(bound, bound * (1 + 1e-9), bound * (1 - 1e-9));
  let x = seed;
  for (let i = 0; i < 500; i += 1) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out.push((x / 2 ** 31) ** 4 * 30); // mostly small values, some above the top bound
  }
  return out;
}

describe('TalliedHistogram', () => {
  it('reports exactly what prom-client records for the same observations, across reads', async () => {
    const { plain, tallied, reference, subject } = pair();
    const series = [
      { queue: 'a', outcome: 'completed' },
      { queue: 'a', outcome: 'dead' },
      { queue: 'b', outcome: 'completed' },
    ];
    const tallies = series.map((labels) => subject.labels(labels));
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
    const count = async (h: Histogram<string>) =>
      (await h.get()).values.find((v) => v.metricName === `${NAME}_count` && v.labels['queue'] === 'b')
        ?.value;
    expect(await count(subject.histogram)).toBe(await count(reference));
    expect(await count(reference)).toBeGreaterThan(0);
  });

  it('keeps counting after the registry is reset', async () => {
    const { plain, tallied, reference, subject } = pair();
    const tally = subject.labels({ queue: 'q', outcome: 'completed' });
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
    const tally = subject.labels({ queue: 'q', outcome: 'completed' });
    tally.observe(Number.NaN);
    tally.observe(Number.POSITIVE_INFINITY);
    tally.observe(0.002);
    const text = await tallied.metrics();
    expect(text).toContain(`${NAME}_count{queue="q",outcome="completed"} 1`);
    expect(text).toContain(`${NAME}_sum{queue="q",outcome="completed"} 0.002`);
  });
});

describe('QueueMetrics', () => {
  it('reports the events and durations of every job, read after read', async () => {
    const registry = new Registry();
    const metrics = new QueueMetrics(registry);
    metrics.added('q', 3);
    metrics.started('q', 0.004);
    metrics.finished('q', 'completed', 0.02, 0.03);
    metrics.started('q', undefined); // a retry: its wait is not known
    metrics.finished('q', 'retried', 0.5, undefined);
    let text = await registry.metrics();
    expect(text).toContain('bulwark_queue_jobs_total{queue="q",event="added"} 3');
    expect(text).toContain('bulwark_queue_jobs_total{queue="q",event="started"} 2');
    expect(text).toContain('bulwark_queue_jobs_total{queue="q",event="completed"} 1');
    expect(text).toContain('bulwark_queue_jobs_total{queue="q",event="retried"} 1');
    expect(text).not.toContain('event="dead"');
    expect(text).toContain('bulwark_queue_wait_seconds_count{queue="q"} 1');
    expect(text).toContain('bulwark_queue_wait_seconds_bucket{le="0.005",queue="q"} 1');
    expect(text).toContain('bulwark_queue_run_seconds_count{queue="q",outcome="retried"} 1');
    expect(text).toContain('bulwark_queue_run_seconds_bucket{le="0.25",queue="q",outcome="retried"} 0');
    expect(text).toContain('bulwark_queue_latency_seconds_sum{queue="q"} 0.03');
    // A second read adds only what happened since the first.
    metrics.added('q');
    metrics.started('q', 0);
    metrics.finished('q', 'dead', 1, undefined);
    metrics.recovered(2);
    text = await registry.metrics();
    expect(text).toContain('bulwark_queue_jobs_total{queue="q",event="added"} 4');
    expect(text).toContain('bulwark_queue_jobs_total{queue="q",event="started"} 3');
    expect(text).toContain('bulwark_queue_jobs_total{queue="q",event="dead"} 1');
    expect(text).toContain('bulwark_queue_jobs_total{queue="*",event="recovered"} 2');
    expect(text).toContain('bulwark_queue_wait_seconds_count{queue="q"} 2');
    expect(text).toContain('bulwark_queue_run_seconds_count{queue="q",outcome="dead"} 1');
    expect(metrics.timings('q').run.count).toBe(3);
  });
});

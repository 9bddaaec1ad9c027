import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { registerMetricsHistoryRoutes } from '../src/admin/metrics.js';
import { CacheMetrics } from '../src/cache/metrics.js';
import { errorHandler } from '../src/http/error-handler.js';
import {
  histogramQuantile,
  MetricsHistory,
  parseSeriesName,
  seriesName,
  type MetricsHistoryOptions,
} from '../src/metrics/history.js';
import { Metrics } from '../src/metrics/index.js';
import { QueueMetrics } from '../src/queue/metrics.js';
import { createStore } from '../src/runtime/store.js';
import type { Store, StoreOptions } from '../src/store/index.js';
import { LogCapture } from './helpers/app.js';
import { postgresForFile, rejection, storeFixture } from './helpers/store.js';
import { until } from './helpers/wait.js';

const pgUrl = postgresForFile();

/** 2030-01-01T00:00:00Z: every tier's buckets start on it. */
const T0 = Date.UTC(2030, 0, 1);
const S = 1000;
const MIN = 60 * S;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** A clock the test moves. */
function testClock(start = T0) {
  let t = start;
  return {
    now: () => t,
    set(at: number) {
      t = at;
    },
    advance(ms: number) {
      t += ms;
    },
  };
}

const http = (name: string, route: string) => seriesName(`http.${name}`, { route });

describe('series names and quantiles', () => {
  it('builds canonical names with sorted, escaped labels, and parses them back', () => {
    const name = seriesName('queue.jobs', { state: 'waiting', queue: 'a"b\\c\nd' });
    expect(name).toBe('queue.jobs{queue="a\\"b\\\\c\\nd",state="waiting"}');
    expect(parseSeriesName(name)).toEqual({
      name: 'queue.jobs',
      labels: { queue: 'a"b\\c\nd', state: 'waiting' },
    });
    expect(parseSeriesName('app.x')).toEqual({ name: 'app.x', labels: {} });
    for (const bad of ['', '1x', 'app x', 'app.x{a=1}', 'app.x{a="1"', 'app.x{a="1",a="2"}', 'app..x'])
      expect(parseSeriesName(bad), bad).toBeUndefined();
  });

  it('interpolates inside the bucket holding the rank, like histogram_quantile', () => {
    const bounds = [0.1, 0.2, 0.4];
    expect(histogramQuantile(0.5, bounds, [0, 10, 10], 10)).toBeCloseTo(0.15, 10);
    expect(histogramQuantile(0.25, bounds, [10, 10, 10], 10)).toBeCloseTo(0.025, 10);
    expect(histogramQuantile(0.99, bounds, [0, 0, 5], 10)).toBe(0.4); // rank in +Inf: the top bound
    expect(histogramQuantile(0.5, bounds, [0, 0, 0], 0)).toBeUndefined();
  });
});

describe.each(['sqlite', 'postgres'] as const)('metrics history on %s', (engine) => {
  const fixture = storeFixture(engine, pgUrl);
  const histories: MetricsHistory[] = [];
  afterEach(async () => {
    for (const history of histories.splice(0)) await history.close();
  });

  async function open(opts: Partial<MetricsHistoryOptions> = {}) {
    const store = opts.store ?? (await fixture.open());
    const metrics = new Metrics({ defaultMetrics: false });
    const clock = testClock();
    const history = new MetricsHistory({ store, registry: metrics.registry, now: clock.now, ...opts });
    histories.push(history);
    return { store, metrics, clock, history };
  }

  /** The stored rows of one series, by resolution then bucket. */
  async function rows(store: Store, series: string) {
    const found = await store.db
      .selectFrom('bulwark_metric_points')
      .selectAll()
      .where('series', '=', series)
      .orderBy('resolution')
      .orderBy('at')
      .execute();
    return found.map((row) => ({ ...row, at: Number(row.at), count: Number(row.count) }));
  }

  /** The newest point's average of `series` at the finest resolution. */
  async function latest(history: MetricsHistory, series: string): Promise<number | undefined> {
    const { points } = await history.query(series, T0 - HOUR, history.now(), 10);
    return points.at(-1)?.avg;
  }

  it('samples HTTP rates, error ratios and latency quantiles per route and over all routes', async () => {
    const { metrics, clock, history } = await open();
    clock.set(T0 + 1 * S);
    await history.sampleNow(); // the counters' baseline
    for (let i = 0; i < 90; i++) metrics.observeHttp('/users/:id', 'GET', 200, 0.003);
    for (let i = 0; i < 10; i++) metrics.observeHttp('/users/:id', 'GET', 503, 0.2);
    for (let i = 0; i < 20; i++) metrics.observeHttp('/orders', 'POST', 201, 0.0007);
    clock.set(T0 + 11 * S);
    await history.sampleNow();

    const users = 'GET /users/:id';
    expect(await latest(history, http('requests_per_s', users))).toBeCloseTo(10, 10);
    expect(await latest(history, http('errors_per_s', users))).toBeCloseTo(1, 10);
    expect(await latest(history, http('error_ratio', users))).toBeCloseTo(0.1, 10);
    // 90 of 100 in (2.5 ms, 5 ms]: rank 50 lies 50/90 into it; rank 99 is 9/10 into (100 ms, 250 ms].
    expect(await latest(history, http('latency_p50_ms', users))).toBeCloseTo(2.5 + 2.5 * (50 / 90), 6);
    expect(await latest(history, http('latency_p99_ms', users))).toBeCloseTo(100 + 150 * (9 / 10), 6);
    expect(await latest(history, http('latency_p99_ms', 'POST /orders'))).toBeCloseTo(0.5 + 0.5 * 0.99, 6);
    expect(await latest(history, http('requests_per_s', '*'))).toBeCloseTo(12, 10);
    expect(await latest(history, http('error_ratio', '*'))).toBeCloseTo(10 / 120, 10);
    // 20 at or below 1 ms, then 90 in (2.5 ms, 5 ms]: rank 60 lies 40/90 into it.
    expect(await latest(history, http('latency_p50_ms', '*'))).toBeCloseTo(2.5 + 2.5 * (40 / 90), 6);

    // A quiet interval: rates of 0 (averages over coarser buckets need them), no latency.
    clock.set(T0 + 21 * S);
    await history.sampleNow();
    const quiet = await history.query(http('requests_per_s', users), T0 + 20 * S, T0 + 21 * S);
    expect(quiet.points.map((p) => p.avg)).toEqual([0]);
    const latency = await history.query(http('latency_p50_ms', users), T0, T0 + 30 * S);
    expect(latency.points.map((p) => p.at)).toEqual([T0 + 10 * S]);
  });

  it('samples dependency modes, queue depths, cache hit ratios, memory and event-loop delay', async () => {
    const { metrics, clock, history } = await open();
    metrics.setDependencyMode('redis', 'fallback');
    metrics.setDependencyMode('postgres', 'primary');
    new QueueMetrics(metrics.registry).attach(async () => {
      return new Map([['email', { waiting: 3, delayed: 1, retrying: 0, active: 2, dead: 0 }]]);
    });
    const users = new CacheMetrics(metrics.registry).forCache('users');
    await history.sampleNow();
    Object.assign(users, { l1Hit: 6, l1Miss: 4, l2Hit: 3, l2Miss: 1 });
    // The event-loop monitor records every 10 ms of real time.
    await new Promise((resolve) => setTimeout(resolve, 50));
    clock.advance(10 * S);
    await history.sampleNow();

    expect(await latest(history, 'dependency.mode{dependency="redis"}')).toBe(0);
    expect(await latest(history, 'dependency.mode{dependency="postgres"}')).toBe(1);
    expect(await latest(history, 'queue.jobs{queue="email",state="waiting"}')).toBe(3);
    expect(await latest(history, 'queue.jobs{queue="email",state="active"}')).toBe(2);
    expect(await latest(history, 'cache.lookups_per_s{cache="users"}')).toBeCloseTo(1, 10);
    expect(await latest(history, 'cache.hit_ratio{cache="users"}')).toBeCloseTo(0.9, 10);
    expect(await latest(history, 'cache.l1_hit_ratio{cache="users"}')).toBeCloseTo(0.6, 10);
    expect(await latest(history, 'process.rss_bytes')).toBeGreaterThan(1e6);
    expect(await latest(history, 'process.heap_used_bytes')).toBeGreaterThan(1e5);
    expect(await latest(history, 'nodejs.eventloop_lag_p99_ms')).toBeGreaterThanOrEqual(0);
  });

  it('samples registered application series, with the instance label when set', async () => {
    const { clock, history } = await open({ instanceId: 'web-1' });
    let orders = 5;
    history.register('app.orders_open{region="eu"}', () => orders);
    history.register('app.async', async () => 7);
    history.register('app.nothing', () => undefined);
    history.register('app.broken', () => {
      throw new Error('down');
    });
    await history.sampleNow();
    orders = 8;
    clock.advance(10 * S);
    await history.sampleNow();
    const eu = 'app.orders_open{instance="web-1",region="eu"}';
    const { points } = await history.query(eu, T0, clock.now());
    expect(points.map((p) => [p.at - T0, p.last])).toEqual([
      [0, 5],
      [10 * S, 8],
    ]);
    expect(await history.seriesNames('app.')).toEqual(['app.async{instance="web-1"}', eu]);
    expect(await history.seriesNames('process.rss')).toEqual(['process.rss_bytes{instance="web-1"}']);

    expect(() => history.register('app.async', () => 1)).toThrow(/already registered/);
    expect(() => history.register('http.mine', () => 1)).toThrow(/built-in area/);
    expect(() => history.register('app.x{bad}', () => 1)).toThrow(/label="value"/);
  });

  it('rejects tiers that do not chain and an interval that is not the finest resolution', async () => {
    const store = await fixture.open();
    const registry = new Metrics({ defaultMetrics: false }).registry;
    const bad = (opts: Partial<MetricsHistoryOptions>, field: RegExp) =>
      expect(() => new MetricsHistory({ store, registry, ...opts })).toThrow(field);
    bad({ intervalMs: 5000 }, /tiers\[0\]\.resolutionS must equal intervalMs/);
    bad({ tiers: [] }, /tiers must name at least one tier/);
    bad(
      {
        tiers: [
          { resolutionS: 10, retentionMs: HOUR },
          { resolutionS: 25, retentionMs: DAY },
        ],
      },
      /tiers\[1\]\.resolutionS must be a multiple/,
    );
    bad(
      {
        tiers: [
          { resolutionS: 10, retentionMs: MIN },
          { resolutionS: 60, retentionMs: DAY },
        ],
      },
      /tiers\[0\]\.retentionMs must be at least twice/,
    );
  });

  it('downsamples into coarser tiers merging count, sum, min, max and last; idempotently', async () => {
    const { store, clock, history } = await open();
    let value = 0;
    history.register('app.v', () => value);
    // Two samples in the first 10 s bucket (merged on write), then one per bucket: 13 samples, 1..13.
    for (const at of [2, 7, ...Array.from({ length: 11 }, (_, i) => 15 + 10 * i)]) {
      clock.set(T0 + at * S);
      value += 1;
      await history.sampleNow();
    }
    expect((await rows(store, 'app.v'))[0]).toMatchObject({
      at: T0,
      count: 2,
      sum: 3,
      min: 1,
      max: 2,
      last: 2,
    });

    clock.set(T0 + 2 * MIN + 10 * S); // both minutes are complete once an interval has passed
    await history.compact();
    const minute = (await rows(store, 'app.v')).filter((r) => r.resolution === 60);
    expect(minute).toEqual([
      { series: 'app.v', resolution: 60, at: T0, count: 7, sum: 28, min: 1, max: 7, last: 7 },
      { series: 'app.v', resolution: 60, at: T0 + MIN, count: 6, sum: 63, min: 8, max: 13, last: 13 },
    ]);

    // Again, and by a second instance sharing the store at the same moment: nothing is counted twice.
    const before = await rows(store, 'app.v');
    const other = await open({ store, now: clock.now });
    await history.compact();
    await Promise.all([history.compact(), other.history.compact(), history.compact()]);
    expect(await rows(store, 'app.v')).toEqual(before);

    // A late sample in a downsampled minute is picked up when the newest minute is recomputed.
    clock.set(T0 + MIN + 55 * S);
    value = 100;
    await history.sampleNow();
    clock.set(T0 + 2 * MIN + 20 * S);
    await history.compact();
    const late = (await rows(store, 'app.v')).filter((r) => r.resolution === 60);
    expect(late[1]).toMatchObject({ count: 7, sum: 163, max: 100, last: 100 });

    // The hour tier merges minute buckets (count-weighted, so the average stays the samples' mean).
    clock.set(T0 + HOUR + 20 * S);
    await history.compact();
    await history.compact();
    const hour = (await rows(store, 'app.v')).filter((r) => r.resolution === 3600);
    expect(hour).toEqual([
      { series: 'app.v', resolution: 3600, at: T0, count: 14, sum: 191, min: 1, max: 100, last: 100 },
    ]);
    const { points } = await history.query('app.v', T0, T0 + HOUR, 3600);
    expect(points).toEqual([{ at: T0, count: 14, avg: 191 / 14, min: 1, max: 100, last: 100 }]);
  });

  it('deletes buckets past each tier retention, keeping the coarser tiers', async () => {
    const { store, clock, history } = await open();
    history.register('app.v', () => 1);
    for (let at = 0; at < 2 * MIN; at += 10 * S) {
      clock.set(T0 + at);
      await history.sampleNow();
    }
    const count = async (resolution: number) =>
      (await rows(store, 'app.v')).filter((r) => r.resolution === resolution).length;

    clock.set(T0 + 6 * HOUR + 61 * S); // the first minute's 10 s buckets ended over 6 h ago
    await history.compact();
    expect([await count(10), await count(60), await count(3600)]).toEqual([6, 2, 1]);
    clock.set(T0 + 6 * HOUR + 3 * MIN);
    await history.compact();
    expect([await count(10), await count(60), await count(3600)]).toEqual([0, 2, 1]);
    clock.set(T0 + 7 * DAY + 3 * MIN);
    await history.compact();
    expect([await count(10), await count(60), await count(3600)]).toEqual([0, 0, 1]);
    clock.set(T0 + 90 * DAY + 2 * HOUR);
    await history.compact();
    expect(await rows(store, 'app.v')).toEqual([]);
  });

  it('answers a range at the finest tier covering it, reaching samples not downsampled yet', async () => {
    const { clock, history } = await open();
    let value = 0;
    history.register('app.v', () => (value += 1));
    for (let at = 0; at < 3 * MIN; at += 10 * S) {
      clock.set(T0 + at + S);
      await history.sampleNow();
    }
    // Only the first minute is downsampled: the pass ran when the second was not complete.
    clock.set(T0 + MIN + 10 * S);
    await history.compact();
    clock.set(T0 + 3 * MIN);

    const fine = await history.query('app.v', T0 + 25 * S, T0 + 50 * S);
    expect(fine.resolutionS).toBe(10);
    // Buckets overlapping the range: the one holding `from` up to the one starting at `to`.
    expect(fine.points.map((p) => (p.at - T0) / S)).toEqual([20, 30, 40, 50]);
    expect(fine.points.map((p) => p.last)).toEqual([3, 4, 5, 6]);

    const minutes = await history.query('app.v', T0, T0 + 3 * MIN, 60);
    expect(minutes.resolutionS).toBe(60);
    expect(minutes.points.map((p) => [(p.at - T0) / S, p.count, p.avg, p.min, p.max, p.last])).toEqual([
      [0, 6, 3.5, 1, 6, 6],
      [60, 6, 9.5, 7, 12, 12],
      [120, 6, 15.5, 13, 18, 18],
    ]);
    expect((await history.query('app.v', T0, T0 + 3 * MIN, 3600)).points).toEqual([
      { at: T0, count: 18, avg: 9.5, min: 1, max: 18, last: 18 },
    ]);

    clock.set(T0 + 7 * HOUR);
    expect((await history.query('app.v', T0, T0 + HOUR)).resolutionS).toBe(60);
    expect((await history.query('app.v', T0 + 2 * HOUR, T0 + 3 * HOUR)).resolutionS).toBe(10);
    clock.set(T0 + 8 * DAY);
    expect((await history.query('app.v', T0, T0 + HOUR)).resolutionS).toBe(3600);
    expect((await history.query('app.unknown', T0, T0 + HOUR)).points).toEqual([]);

    await rejection(history.query('app.v', T0 + 1, T0), 'BWK_ERR_METRICS_QUERY_INVALID');
    await rejection(history.query('app.v', Number.NaN, T0), 'BWK_ERR_METRICS_QUERY_INVALID');
    const params = await rejection(history.query('app.v', T0, T0 + 1, 30), 'BWK_ERR_METRICS_QUERY_INVALID');
    expect(params['detail']).toMatch(/^resolution must be one of 10, 60, 3600/);
  });

  it('writes a last sample on close; start and close are idempotent', async () => {
    const { store, history } = await open({ now: () => T0 });
    history.register('app.v', () => 42);
    history.start();
    history.start();
    await history.close();
    await history.close();
    expect(await rows(store, 'app.v')).toMatchObject([{ at: T0, count: 1, last: 42 }]);
    expect(await history.sampleNow()).toBe(0); // closed
  });

  it('samples and compacts on its timers once started, logging failures instead of throwing', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const capture = new LogCapture();
      const { store, clock, history } = await open({ logger: pino(capture) });
      history.register('app.v', () => 1);
      history.register('app.broken', () => {
        throw new Error('reader down');
      });
      history.start();
      clock.set(T0 + 5 * S);
      vi.advanceTimersByTime(10_000);
      await until(async () => (await rows(store, 'app.v')).length === 1, 5000, 'the first tick');
      clock.set(T0 + 75 * S); // the first minute is complete at the pass 60 s after start()
      vi.advanceTimersByTime(50_000);
      await until(
        async () => (await rows(store, 'app.v')).some((r) => r.resolution === 60),
        5000,
        'the compaction pass',
      );
      const warnings = () => capture.lines.filter((l) => l['level'] === 40).map((l) => l['msg']);
      // One line per failing reader, however many samples it failed.
      expect(warnings()).toEqual(['metrics history: a series reader failed']);

      await store.close();
      vi.advanceTimersByTime(10_000);
      await until(() => warnings().includes('metrics history: sample failed'), 5000, 'the failure logged');
    } finally {
      vi.useRealTimers();
    }
  });

  it('has a sample in the store once sampleNow resolves, even if the process is killed right after', async () => {
    const options: StoreOptions = fixture.options();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', CRASH_FIXTURE, JSON.stringify(options)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const written = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        // Killed the moment the write is acknowledged: no close, no flush.
        if (out.includes('\n')) {
          child.kill('SIGKILL');
          resolve(out.trim());
        }
      });
      child.once('exit', (code) => reject(new Error(`fixture exited with ${code}: ${out}`)));
    });
    expect(written).toBe('written 1');
    await exited;
    const store = await createStore(options);
    try {
      const reader = new MetricsHistory({ store, registry: new Metrics({ defaultMetrics: false }).registry });
      const { points } = await reader.query('app.crash', 0, Date.now() + HOUR);
      expect(points.map((p) => p.last)).toEqual([42]);
    } finally {
      await store.close();
    }
  });

  it('samples ~200 series well within the interval', async () => {
    const { metrics, clock, history } = await open();
    // 40 routes x (requests, errors, error ratio, p50, p99) = 200 HTTP series, plus '*' and the process.
    const routes = Array.from({ length: 40 }, (_, i) => `/resource-${i}/:id`);
    await history.sampleNow();
    const timings: number[] = [];
    for (let round = 0; round < 5; round++) {
      for (const r of routes) for (const status of [200, 500]) metrics.observeHttp(r, 'GET', status, 0.004);
      clock.advance(10 * S);
      const started = performance.now();
      const written = await history.sampleNow();
      timings.push(performance.now() - started);
      expect(written).toBeGreaterThanOrEqual(205);
    }
    timings.sort((a, b) => a - b);
    console.log(
      `metrics history on ${engine}: one sample of ~207 series read and written in ${timings[2]?.toFixed(1)} ms (median of 5; interval 10 000 ms)`,
    );
  });
});

/** Child process: opens the store (options as argv JSON), writes one sample, prints, then idles. */
const CRASH_FIXTURE = `
import { createStore } from './src/runtime/store.ts';
import { Metrics } from './src/metrics/index.ts';
import { MetricsHistory } from './src/metrics/history.ts';
const store = await createStore(JSON.parse(process.argv[1]));
const history = new MetricsHistory({ store, registry: new Metrics({ defaultMetrics: false }).registry });
history.register('app.crash', () => 42);
await history.sampleNow();
const { points } = await history.query('app.crash', 0, Date.now() + 3_600_000);
process.stdout.write('written ' + points.length + '\\n');
setInterval(() => undefined, 1000);
`;

describe('metrics history admin routes', () => {
  const fixture = storeFixture('sqlite', pgUrl);
  const apps: FastifyInstance[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  async function adminRoutes() {
    const store = await fixture.open();
    const clock = testClock(T0 + 30 * MIN);
    const history = new MetricsHistory({
      store,
      registry: new Metrics({ defaultMetrics: false }).registry,
      now: clock.now,
    });
    let value = 0;
    history.register('app.v{kind="a b"}', () => (value += 1));
    for (let at = 0; at < 30 * S; at += 10 * S) {
      clock.set(T0 + 30 * MIN + at);
      await history.sampleNow();
    }
    const app = Fastify();
    apps.push(app);
    app.setErrorHandler(errorHandler(false));
    const routes: { url: string; schema: unknown }[] = [];
    app.addHook('onRoute', (r) => void routes.push({ url: r.url, schema: r.schema }));
    registerMetricsHistoryRoutes(app, history);
    await app.ready();
    return { app, history, routes };
  }

  it('lists series and reads one, the last hour by default', async () => {
    const { app, routes } = await adminRoutes();
    for (const r of routes) {
      expect(r.schema, r.url).toMatchObject({ tags: ['admin'], security: [{ adminKey: [] }] });
    }
    const list = await app.inject({ method: 'GET', url: '/metrics/series?prefix=app.' });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toEqual({ series: ['app.v{kind="a b"}'] });
    expect((await app.inject({ method: 'GET', url: '/metrics/series?prefix=nope' })).json()).toEqual({
      series: [],
    });

    const series = encodeURIComponent('app.v{kind="a b"}');
    const res = await app.inject({ method: 'GET', url: `/metrics/history?series=${series}` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      series: 'app.v{kind="a b"}',
      resolutionS: 10,
      points: [1, 2, 3].map((n, i) => ({
        at: T0 + 30 * MIN + i * 10 * S,
        count: 1,
        avg: n,
        min: n,
        max: n,
        last: n,
      })),
    });
    const ranged = await app.inject({
      method: 'GET',
      url: `/metrics/history?series=${series}&from=${T0 + 30 * MIN + 10 * S}&to=${T0 + 31 * MIN}&resolution=60`,
    });
    expect(ranged.json()).toMatchObject({
      resolutionS: 60,
      points: [{ at: T0 + 30 * MIN, count: 3, avg: 2 }],
    });
    // maxPoints: the three 10 s points merge into coarser buckets of whole tiers, nothing is lost.
    const capped = await app.inject({
      method: 'GET',
      url: `/metrics/history?series=${series}&from=${T0 + 30 * MIN}&to=${T0 + 30 * MIN + 30 * S}&maxPoints=2`,
    });
    const body = capped.json<{
      resolutionS: number;
      points: { count: number; min: number; max: number }[];
    }>();
    expect(body.resolutionS % 10).toBe(0);
    expect(body.points.length).toBeLessThanOrEqual(2);
    expect(body.points.reduce((sum, p) => sum + p.count, 0)).toBe(3);
    expect([Math.min(...body.points.map((p) => p.min)), Math.max(...body.points.map((p) => p.max))]).toEqual([
      1, 3,
    ]);
    const tooMany = await app.inject({
      method: 'GET',
      url: `/metrics/history?series=${series}&maxPoints=5000`,
    });
    expect(tooMany.statusCode).toBe(400);
  });

  it('answers bad input with 400 BWK_ERR_METRICS_QUERY_INVALID naming the field', async () => {
    const { app } = await adminRoutes();
    for (const [query, field] of [
      ['from=1', /series/],
      ['series=app.v&from=yesterday', /from/],
      ['series=app.v&to=-5', /to/],
      ['series=app.v&from=2000&to=1000', /from must not be after to/],
      ['series=app.v&resolution=7', /resolution must be one of 10, 60, 3600/],
    ] as const) {
      const res = await app.inject({ method: 'GET', url: `/metrics/history?${query}` });
      expect(res.statusCode, query).toBe(400);
      const { error } = res.json<{ error: { code: string; message: string } }>();
      expect(error.code, query).toBe('BWK_ERR_METRICS_QUERY_INVALID');
      expect(error.message, query).toMatch(field);
    }
  });
});

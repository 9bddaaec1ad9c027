import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertEngine } from '../src/alerts/engine.js';
import { emailBodies } from '../src/alerts/notifier-email.js';
import { receiverPayload, type Notification, type Receiver } from '../src/alerts/notifiers.js';
import { AlertOutbox } from '../src/alerts/outbox.js';
import {
  buildReport,
  enqueueReport,
  REPORTS_QUEUE,
  scheduleReports,
  type ReportOptions,
} from '../src/alerts/reports.js';
import type { AlertRule } from '../src/alerts/rules.js';
import { MetricsHistory } from '../src/metrics/history.js';
import { Metrics } from '../src/metrics/index.js';
import { EmbeddedJobQueue } from '../src/queue/index.js';
import type { Store } from '../src/store/index.js';
import { ErrorStore } from '../src/tracker/store.js';
import { ErrorTracker } from '../src/tracker/tracker.js';
import { postgresForFile, rejection, storeFixture } from './helpers/store.js';
import { until } from './helpers/wait.js';

const silent = pino({ level: 'silent' });
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
/** The report's end: Wednesday 2030-01-02 08:00 UTC; its day starts at `FROM`. */
const TO = Date.UTC(2030, 0, 2, 8);
const FROM = TO - DAY;

const receivers: Receiver[] = [
  { name: 'team', type: 'webhook', url: 'http://unused.invalid' },
  { name: 'oncall', type: 'webhook', url: 'http://unused.invalid' },
];
const names = receivers.map((r) => r.name);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** An engine on `store` with a hand-driven clock, rules read from `values`, deliveries recorded. */
function engineOn(store: Store, clock: { now: number }, rules: AlertRule[] = []) {
  const values = new Map<string, number>();
  const delivered: { receiver: string; n: Notification }[] = [];
  const engine = new AlertEngine({
    store,
    logger: silent,
    serviceId: 'shop',
    instanceId: 'i1',
    rules,
    receivers,
    read: (series) => Promise.resolve(values.get(series)),
    deliver: (receiver, n) => {
      delivered.push({ receiver: receiver.name, n });
      return Promise.resolve();
    },
    repeatIntervalMs: 4 * HOUR,
    now: () => clock.now,
  });
  closers.push(() => engine.close());
  return { engine, values, delivered };
}

const rule = (id: string): AlertRule => ({
  id,
  kind: 'threshold',
  series: id,
  fireAbove: 1,
  severity: 'warning',
  summary: `${id} is high`,
});

/** The notification of a day's report with nothing in it, but its key and details. */
const emptyDay = {
  rule: 'bulwark.report.daily',
  status: 'firing',
  severity: 'info',
  summary: 'Daily report for shop: 0 alerts',
  labels: { alertname: 'bulwark.report.daily', severity: 'info', report: 'daily' },
  startsAt: FROM,
  endsAt: TO,
  service: 'shop',
} as const;

/** Errors of distinct groups (type and message differ). */
const failure = (type: string, message: string) => Object.assign(new Error(message), { name: type });

const pgUrl = postgresForFile();

describe.each(['sqlite', 'postgres'] as const)('reports on %s', (engine) => {
  const fixture = storeFixture(engine, pgUrl);

  /** A day of errors, alerts and traffic, built by the real tracker, engine and history. */
  async function handBuiltDay(store: Store): Promise<ReportOptions & { history: MetricsHistory }> {
    const clock = { now: FROM - 3 * DAY };
    const errors = new ErrorStore(store.db);
    const tracker = new ErrorTracker({
      errors,
      audit: store.audit,
      logger: silent,
      flags: { isEnabled: (_key, _context, fallback = false) => fallback },
      release: '1.0.0',
      now: () => clock.now,
    });
    closers.push(() => tracker.close());
    const capture = async (at: number, error: Error, times = 1) => {
      clock.now = at;
      for (let i = 0; i < times; i++) tracker.capture(error);
      await tracker.flush();
    };
    // Before the period: `old` (resolved, recurs in the period: a regression) and `gone` (resolved).
    const old = tracker.capture(failure('TypeError', 'cart total missing'))?.fingerprint ?? '';
    const gone = tracker.capture(failure('SyntaxError', 'bad coupon json'))?.fingerprint ?? '';
    await tracker.setState(old, 'resolved', 'test');
    await tracker.setState(gone, 'resolved', 'test');
    // In the period: `old` 3 more times, `fresh` 5 times (new), `noisy` twice (new, then ignored).
    await capture(FROM + HOUR, failure('TypeError', 'cart total missing'), 3);
    await capture(FROM + 2 * HOUR, failure('RangeError', 'page size too large'), 5);
    const noisy = failure('EvalError', 'widget script refused');
    await capture(FROM + 3 * HOUR, noisy, 2);
    await tracker.setState(tracker.capture(noisy)?.fingerprint ?? '', 'ignored', 'test');
    // After the period: not in it.
    await capture(TO + MIN, failure('URIError', 'malformed redirect'));

    // Alerts: `cpu` fired before the period (its repeats in it are no transitions); `disk` fires,
    // resolves and fires again in it; `mem` fires after it.
    const { engine: alerts, values } = engineOn(store, clock, [rule('cpu'), rule('disk'), rule('mem')]);
    const at = async (time: number, set: Record<string, number>) => {
      clock.now = time;
      for (const [series, value] of Object.entries(set)) values.set(series, value);
      await alerts.evaluateOnce();
    };
    await at(FROM - HOUR, { cpu: 5, disk: 0, mem: 0 });
    await at(FROM + 4 * HOUR, { disk: 5 });
    await at(FROM + 5 * HOUR, { disk: 0 });
    await at(FROM + 6 * HOUR, { disk: 5 });
    await at(TO + MIN, { mem: 5 });
    const outbox = await alerts.outbox.list();
    expect(outbox.some((e) => e.key === 'cpu:1:repeat1:team')).toBe(true);

    // Traffic: six hours sampled every minute from FROM + 2 h, 10 requests a minute, one a 503.
    const metrics = new Metrics({ defaultMetrics: false });
    const history = new MetricsHistory({
      store,
      registry: metrics.registry,
      intervalMs: MIN,
      tiers: [
        { resolutionS: 60, retentionMs: 2 * DAY },
        { resolutionS: 3600, retentionMs: 30 * DAY },
      ],
      now: () => clock.now,
    });
    closers.push(() => history.close());
    clock.now = FROM + 2 * HOUR;
    await history.sampleNow(); // the rates' baseline
    for (let minute = 1; minute <= 360; minute++) {
      for (let i = 0; i < 9; i++) metrics.observeHttp('/cart', 'GET', 200, 0.003);
      metrics.observeHttp('/cart', 'GET', 503, 0.2);
      clock.now += MIN;
      await history.sampleNow();
    }
    for (let i = 0; i < 50; i++) metrics.observeHttp('/cart', 'GET', 200, 0.003);
    clock.now = TO + MIN; // after the period
    await history.sampleNow();
    clock.now = TO + 5 * MIN; // the report runs a little after its end
    return {
      store,
      logger: silent,
      serviceId: 'shop',
      errors,
      history,
      receivers: names,
      now: () => clock.now,
    };
  }

  it('reports errors, alerts, traffic and uptime of a hand-built day', async () => {
    const store = await fixture.open();
    const opts = await handBuiltDay(store);
    const report = await buildReport('daily', TO, opts);
    expect(report).toMatchObject({ period: 'daily', from: FROM, to: TO });
    expect(report.title).toBe('Daily report for shop: 3 600 requests, 3 error groups, 2 alerts');

    const { errors, alerts, traffic, uptime } = report.data;
    expect(errors).toMatchObject({
      seen: 3,
      new: 2,
      regressed: 1,
      states: { open: 3, resolved: 1, ignored: 1 },
    });
    expect(errors?.top.map((g) => [g.type, g.count, g.new, g.regressed, g.state])).toEqual([
      ['RangeError', 5, true, false, 'open'],
      ['TypeError', 4, false, true, 'open'],
      ['EvalError', 3, true, false, 'ignored'],
    ]);
    expect(alerts).toEqual({
      firings: 2,
      resolved: 1,
      byRule: [{ rule: 'disk', firings: 2 }],
      firingNow: [
        { rule: 'cpu', since: FROM - HOUR },
        { rule: 'disk', since: FROM + 6 * HOUR },
        { rule: 'mem', since: TO + MIN },
      ],
    });
    expect(traffic?.resolutionS).toBe(3600);
    expect(traffic?.requests).toBeCloseTo(3600, 6);
    expect(traffic?.errors).toBeCloseTo(360, 6);
    expect(traffic?.errorRatio).toBeCloseTo(0.1, 10);
    // 9 at 3 ms and 1 at 200 ms: rank 9.9 lies 0.9 into (100 ms, 250 ms].
    expect(traffic?.latencyP99MaxMs).toBeCloseTo(235, 6);
    expect(traffic?.latencyP99MeanMs).toBeCloseTo(235, 6);
    expect(uptime).toEqual({ ratio: (361 * MIN) / DAY, samples: 361, intervalMs: MIN });

    expect(report.text).toContain('Period: 2030-01-01 08:00 UTC to 2030-01-02 08:00 UTC');
    expect(report.text).toContain('Requests: 3 600');
    expect(report.text).toContain('5xx responses: 360 (mean error ratio 10.00 %)');
    expect(report.text).toContain('Latency p99: max 235 ms, mean 235 ms');
    expect(report.text).toMatch(
      /Uptime: 25\.07 % \(share of the period with metrics history samples, an approximation/,
    );
    expect(report.text).toContain('3 groups seen (2 new, 1 regressed); now 3 open, 1 resolved, 1 ignored');
    expect(report.text).toContain('1. RangeError: page size too large');
    expect(report.text).toContain('2 firings (disk 2), 1 resolved');
    expect(report.text).toContain('Firing now: cpu since 2030-01-01 07:00 UTC, disk since');

    // Once the coarse buckets are downsampled and stored, the figures are the same.
    await opts.history.compact();
    const compacted = await buildReport('daily', TO, opts);
    expect(compacted.text).toBe(report.text);
    expect(compacted.data.traffic?.requests).toBeCloseTo(3600, 6);
    // The week also holds what happened before the day: `cpu` firing, `old` and `gone` first seen.
    const week = await buildReport('weekly', TO, opts);
    expect(week.title).toBe('Weekly report for shop: 3 600 requests, 4 error groups, 3 alerts');
    expect(week.data.alerts.byRule).toEqual([
      { rule: 'disk', firings: 2 },
      { rule: 'cpu', firings: 1 },
    ]);
    expect(week.data.errors).toMatchObject({ seen: 4, new: 4, regressed: 0 });
    expect(week.data.uptime?.ratio).toBeCloseTo((361 * MIN) / (7 * DAY), 10);
  });

  it('leaves out the parts whose source is absent, and rejects an unknown period', async () => {
    const store = await fixture.open();
    const opts: ReportOptions = { store, logger: silent, serviceId: 'shop', receivers: names };
    const report = await buildReport('weekly', TO, opts);
    expect(report.title).toBe('Weekly report for shop: 0 alerts');
    expect(report.data).toEqual({
      service: 'shop',
      alerts: { firings: 0, resolved: 0, byRule: [], firingNow: [] },
    });
    expect(report.text).not.toMatch(/Traffic|Errors|Uptime/);
    expect(report.text).toContain('Firing now: none');
    await rejection(buildReport('hourly' as 'daily', TO, opts), 'BWK_ERR_ALERTS_CONFIG');
  });
});

describe('report delivery', () => {
  const fixture = storeFixture('sqlite', () => '');

  it('is enqueued once per receiver whatever the repeats and instances, and delivered once with its text', async () => {
    const first = await fixture.open();
    const second = await fixture.open(); // another instance on the same database
    const opts = (store: Store): ReportOptions => ({
      store,
      logger: silent,
      serviceId: 'shop',
      receivers: names,
      now: () => TO,
    });
    const report = await buildReport('daily', TO, opts(first));
    // One after the other: two SQLite connections in one thread would wait on each other's lock.
    await enqueueReport(report, opts(first));
    await enqueueReport(report, opts(second));
    await enqueueReport(await buildReport('daily', TO, opts(second)), opts(second));
    const outbox = new AlertOutbox(first.db);
    expect((await outbox.list()).map((e) => e.key).sort()).toEqual([
      'report:daily:2030-01-02:oncall',
      'report:daily:2030-01-02:team',
    ]);

    const { engine, delivered } = engineOn(first, { now: TO + MIN });
    expect(await engine.sendOnce()).toBe(2);
    expect(await engine.sendOnce()).toBe(0);
    expect(delivered.map((d) => d.receiver).sort()).toEqual(['oncall', 'team']);
    expect(delivered[0]?.n).toEqual({ key: delivered[0]?.n.key, ...emptyDay, details: report.text });
    expect((await outbox.list({ state: 'sent' })).length).toBe(2);
  });

  it('runs on the embedded queue at the scheduled time, once, with the occurrence as its end', async () => {
    const store = await fixture.open();
    let now = TO - 30_000;
    const queues = new EmbeddedJobQueue({ store, pollMs: 20, now: () => now });
    closers.push(() => queues.close(1000));
    const opts: ReportOptions = {
      store,
      logger: silent,
      serviceId: 'shop',
      receivers: names,
      now: () => now,
    };
    await scheduleReports(queues, opts); // default crons: daily 08:00, weekly Monday 08:00 (UTC)
    const outbox = new AlertOutbox(store.db);
    expect(await outbox.list()).toEqual([]);

    now = TO + 1_000; // the daily occurrence is due; 2030-01-02 is a Wednesday
    await until(async () => (await outbox.list()).length === 2, 5_000, 'the daily report');
    // An extra run the same day (by hand, or a redelivered job) adds nothing.
    await queues.add(REPORTS_QUEUE, { period: 'daily' });
    await until(
      async () => {
        const counts = (await queues.counts(REPORTS_QUEUE)).get(REPORTS_QUEUE);
        return counts !== undefined && Object.values(counts).every((n) => n === 0);
      },
      5_000,
      'the extra run',
    );
    const entries = await outbox.list();
    expect(entries.map((e) => e.key).sort()).toEqual([
      'report:daily:2030-01-02:oncall',
      'report:daily:2030-01-02:team',
    ]);
    const sent = JSON.parse(entries[0]?.payload ?? '{}') as Notification;
    expect([sent.startsAt, sent.endsAt]).toEqual([FROM, TO]);
    expect(sent.details).toContain('Daily report for shop');
  });
});

describe('report details in every notifier', () => {
  it('webhook as is, Slack attachment text, PagerDuty custom details, Alertmanager description, email bodies', () => {
    const details = 'Daily report for shop\n  1. TypeError: <b>&</b>';
    const n: Notification = { key: 'report:daily:2030-01-02:team', ...emptyDay, details };
    const url = 'http://unused.invalid';
    expect(receiverPayload({ name: 'w', type: 'webhook', url }, n)).toMatchObject({ details });
    expect(receiverPayload({ name: 's', type: 'slack', url }, n)).toMatchObject({
      attachments: [{ text: 'Daily report for shop\n  1. TypeError: &lt;b&gt;&amp;&lt;/b&gt;' }],
    });
    expect(receiverPayload({ name: 'p', type: 'pagerduty', routingKey: 'k' }, n)).toMatchObject({
      payload: { custom_details: { details } },
    });
    expect(receiverPayload({ name: 'a', type: 'alertmanager', url }, n)).toMatchObject({
      alerts: [{ annotations: { description: details } }],
    });
    const { text, html } = emailBodies(n);
    expect(text).toContain(details);
    expect(html).toContain('<pre>Daily report for shop\n  1. TypeError: &lt;b&gt;&amp;&lt;/b&gt;</pre>');
  });
});

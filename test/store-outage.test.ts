// Store outage conformance: every capability with tables in the store (kv and flags, audit, queues,
// error tracking, metrics history, alerting and its reports) answers a dead PostgreSQL with
// BWK_ERR_STORE_UNAVAILABLE, from its API and from its admin route (503 with the code), whether the
// server dies under a query in flight or before the call; the background loops log the outage once
// and keep running; with the server back on its port, the same calls work again.
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertEngine } from '../src/alerts/engine.js';
import { buildReport, enqueueReport, type Report } from '../src/alerts/reports.js';
import { isBulwarkError } from '../src/errors/index.js';
import type { Bulwark } from '../src/runtime/create.js';
import { ErrorStore } from '../src/tracker/store.js';
import { adminApp, adminAuth } from './helpers/admin.js';
import { LogCapture } from './helpers/app.js';
import { startPostgres, uniqueSchema, type PostgresServer } from './helpers/postgres.js';
import { until } from './helpers/wait.js';

const HOUR = 3_600_000;

/** Settles `promise`: its value, or the error it rejected with. */
function settle(promise: Promise<unknown>): Promise<{ value?: unknown; error?: unknown }> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

/** Asserts that each named call rejected with BWK_ERR_STORE_UNAVAILABLE (naming the call when not). */
function expectUnavailable(outcomes: Record<string, { value?: unknown; error?: unknown }>): void {
  const wrong = Object.entries(outcomes)
    .filter(([, o]) => !isBulwarkError(o.error, 'BWK_ERR_STORE_UNAVAILABLE'))
    .map(([name, o]) => `${name}: ${'error' in o ? String(o.error) : 'resolved'}`);
  expect.soft(wrong).toEqual([]);
}

/** Asserts that each named admin response is a 503 carrying BWK_ERR_STORE_UNAVAILABLE. */
function expect503(responses: Record<string, { statusCode: number; json(): unknown }>): void {
  const answers = Object.fromEntries(
    Object.entries(responses).map(([route, r]) => [
      route,
      [r.statusCode, (r.json() as { error?: { code?: string } }).error?.code],
    ]),
  );
  const expected = Object.fromEntries(
    Object.keys(responses).map((route) => [route, [503, 'BWK_ERR_STORE_UNAVAILABLE']]),
  );
  expect.soft(answers).toEqual(expected);
}

describe('store outage: every capability answers BWK_ERR_STORE_UNAVAILABLE', () => {
  let server: PostgresServer;
  let restarted: PostgresServer | undefined;
  let app: FastifyInstance;
  let bulwark: Bulwark;
  const logs = new LogCapture();
  /** A second alert engine on the same store whose clock the test moves, and its log. */
  let clocked: AlertEngine | undefined;
  let clock = Date.now();
  const clockedLogs = new LogCapture();
  const schema = uniqueSchema('outage');
  const series = 'app.outage_probe';
  /** A report built while the store is up, for enqueueing while it is down. */
  let report: Report | undefined;

  beforeAll(async () => {
    server = await startPostgres();
    ({ app, instance: bulwark } = await adminApp({
      databaseUrl: server.url,
      store: { schema },
      logDestination: logs,
      // One coarse tier: no sample or compaction runs by itself during the test.
      metricsHistory: {
        intervalMs: HOUR,
        tiers: [{ resolutionS: 3600, retentionMs: 24 * HOUR }],
        compactEveryMs: HOUR,
      },
      alerts: {
        defaultRules: false,
        // Never contacted: the one rule cannot fire (its series has no point). A rule there is, so
        // that the alerts page reads its state from the store.
        rules: [
          {
            id: 'never',
            kind: 'threshold',
            series: 'outage.never',
            fireAbove: 1,
            severity: 'info',
            summary: 'never fires',
          },
        ],
        receivers: [{ name: 'ops', type: 'webhook', url: 'http://127.0.0.1:9/hook' }],
        // Fast loops, so an outage spans many passes of each.
        evaluateEveryMs: 50,
        sendEveryMs: 20,
      },
    }));
    clocked = new AlertEngine({
      store: bulwark.store,
      logger: pino(clockedLogs),
      serviceId: 'outage',
      instanceId: 'clocked',
      rules: [],
      receivers: [],
      read: () => Promise.resolve(undefined),
      evaluateEveryMs: HOUR,
      sendEveryMs: 20,
      now: () => clock,
    });
    clocked.start();
  }, 60_000);

  afterAll(async () => {
    await clocked?.close();
    await app.close();
    await restarted?.stop();
    await server.stop();
  });

  const history = () => {
    const h = bulwark.metrics.history;
    if (h === undefined) throw new Error('metrics history expected');
    return h;
  };
  const alerts = () => {
    const a = bulwark.alerts;
    if (a === undefined) throw new Error('alerting expected');
    return a;
  };
  const reportOptions = () => ({
    store: bulwark.store,
    logger: bulwark.logger,
    serviceId: 'outage',
    errors: new ErrorStore(bulwark.store.db),
    history: history(),
    receivers: ['ops'],
  });
  const admin = (url: string) => app.inject({ url: `/admin/api${url}`, headers: adminAuth });

  /** One call per capability; each resolves while the store is up. */
  const calls = (): Record<string, () => Promise<unknown>> => ({
    'kv.get': () => bulwark.store.kv.get('outage', 'k'),
    'kv.put': () => bulwark.store.kv.put('outage', 'k', { n: 2 }),
    'flags.kill': () => bulwark.flags.kill('bulwark.cache', { actor: 'test', reason: 'outage' }),
    'audit.append': () => bulwark.store.audit.append({ actor: 'test', action: 'outage', target: 't' }),
    'audit.list': () => bulwark.store.audit.list(),
    'queues.add': () => bulwark.queues.add('outage', { n: 1 }),
    'queues.counts': () => bulwark.queues.counts(),
    'errors.groups': () => bulwark.errors.groups(),
    'errors.prune': () => bulwark.errors.prune(),
    'history.query': () => history().query(series, Date.now() - HOUR, Date.now()),
    'history.seriesNames': () => history().seriesNames(),
    'history.sampleNow': () => history().sampleNow(),
    'history.compact': () => history().compact(),
    'alerts.rules': () => alerts().rules(),
    'alerts.outbox.list': () => alerts().outbox.list({ limit: 10 }),
    'alerts.evaluateOnce': () => alerts().evaluateOnce(),
    'alerts.sendOnce': () => alerts().sendOnce(),
    'reports.build': async () => (report = await buildReport('daily', Date.now(), reportOptions())),
    'reports.enqueue': async () => {
      if (report === undefined) throw new Error('no report built yet');
      await enqueueReport(report, reportOptions());
    },
  });
  const routes = [
    '/audit',
    '/queues',
    '/errors',
    '/metrics/series',
    `/metrics/history?series=${encodeURIComponent(series)}`,
    '/alerts',
    '/alerts/outbox',
  ];

  it(
    'under a query in flight, before a call, and again once the server is back',
    { timeout: 60_000 },
    async () => {
      // The store up: data in every table the calls read, and every call and route answering.
      await bulwark.store.kv.put('outage', 'k', { n: 1 });
      bulwark.errors.capture(new Error('before the outage'));
      await bulwark.errors.flush();
      history().register(series, () => 1);
      await history().sampleNow();
      await history().sampleNow();
      for (const [name, call] of Object.entries(calls())) {
        const outcome = await settle(call());
        expect(outcome.error, name).toBeUndefined();
      }
      for (const route of routes) expect((await admin(route)).statusCode, route).toBe(200);

      // A query in flight when PostgreSQL dies: the tables are locked by another session, so the
      // calls wait inside the server until it is killed under them.
      const locker = new pg.Client({ connectionString: server.url });
      await locker.connect();
      locker.on('error', () => undefined);
      await locker.query('begin');
      await locker.query(
        `lock table ${schema}.bulwark_error_groups, ${schema}.bulwark_metric_points in access exclusive mode`,
      );
      const inFlight = {
        'errors.groups': settle(bulwark.errors.groups()),
        'history.query': settle(history().query(series, Date.now() - HOUR, Date.now())),
        'history.seriesNames': settle(history().seriesNames()),
      };
      const inFlightRoutes = {
        '/errors': admin('/errors'),
        '/metrics/series': admin('/metrics/series'),
      };
      // Two calls wait on the error groups and three on the metric points: nothing else reads them.
      await until(
        async () => {
          const waiting = await locker.query<{ relname: string; n: number }>(
            'select c.relname, count(*)::int as n from pg_locks l join pg_class c on c.oid = l.relation where not l.granted group by c.relname',
          );
          const n = (table: string) => waiting.rows.find((r) => r.relname === table)?.n ?? 0;
          return n('bulwark_error_groups') >= 2 && n('bulwark_metric_points') >= 3;
        },
        10_000,
        'the calls waiting on the locked tables',
      );
      await server.kill('SIGKILL');
      void locker.end().catch(() => undefined);

      expectUnavailable(
        Object.fromEntries(
          await Promise.all(Object.entries(inFlight).map(async ([name, p]) => [name, await p] as const)),
        ),
      );
      expect503(
        Object.fromEntries(
          await Promise.all(
            Object.entries(inFlightRoutes).map(async ([route, r]) => [route, await r] as const),
          ),
        ),
      );

      // The server down: every call and route of every capability.
      const outcomes: Record<string, { value?: unknown; error?: unknown }> = {};
      for (const [name, call] of Object.entries(calls())) outcomes[name] = await settle(call());
      expectUnavailable(outcomes);
      const answers: Record<string, Awaited<ReturnType<typeof admin>>> = {};
      for (const route of routes) answers[route] = await admin(route);
      expect503(answers);

      // The loops (delivery every 20 ms, evaluation every 50 ms, error writes every second) keep
      // failing; each says so once.
      await until(
        () =>
          [
            'alerts: delivery failed',
            'alerts: evaluation failed',
            'errors: cannot write error groups; keeping them',
          ].every((msg) => logs.lines.some((l) => l['msg'] === msg)),
        10_000,
        'the loops logging the outage',
      );
      // An observation window, not a wait for a condition: ~25 more delivery passes and ~10 more
      // evaluations fail in it, and none of them may log again.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const count = (msg: string) => logs.lines.filter((l) => l['msg'] === msg).length;
      expect(count('alerts: delivery failed')).toBe(1);
      expect(count('alerts: evaluation failed')).toBe(1);
      expect(count('errors: cannot write error groups; keeping them')).toBe(1);
      // Five minutes on, a loop still failing says so again, with how many passes failed.
      const delivery = () => clockedLogs.lines.filter((l) => l['msg'] === 'alerts: delivery failed');
      expect(delivery()).toHaveLength(1);
      clock += 300_000;
      await until(() => delivery().length === 2, 10_000, 'the reminder');
      expect(delivery()[1]).toMatchObject({ level: 40, failures: expect.any(Number) as number });
      expect(delivery()[1]?.['failures']).toBeGreaterThan(2);

      // The server back on the same port: the pool reconnects and the same calls work again.
      restarted = await startPostgres({
        dir: server.dir,
        ports: { pick: () => Promise.resolve(server.port), attempts: 1 },
      });
      await until(async () => (await settle(bulwark.store.kv.get('outage', 'k'))).error === undefined);
      for (const [name, call] of Object.entries(calls())) {
        const outcome = await settle(call());
        expect(outcome.error, name).toBeUndefined();
      }
      for (const route of routes) expect((await admin(route)).statusCode, route).toBe(200);
      expect((await bulwark.store.kv.get('outage', 'k'))?.value).toEqual({ n: 2 });
      await until(
        () => count('alerts: delivery works again') === 1 && count('alerts: evaluation works again') === 1,
        10_000,
        'the loops logging the recovery',
      );
      await until(
        () => clockedLogs.lines.some((l) => l['msg'] === 'alerts: delivery works again'),
        10_000,
        'the clocked loop logging the recovery',
      );
    },
  );
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttentionItem } from '../src/admin/attention.js';
import type { AlertsConfig } from '../src/alerts/config.js';
import { liveApp, liveAuth } from './helpers/live.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { until } from './helpers/wait.js';

const alerts: AlertsConfig = {
  defaultRules: false,
  receivers: [],
  rules: [
    {
      id: 'checkout-slow',
      kind: 'threshold',
      series: 'app.checkout_p99_ms',
      fireAbove: 500,
      clearAbove: 300,
      severity: 'critical',
      summary: 'Checkout is slow',
    },
  ],
};

describe('admin API: overview (what needs attention, worst first)', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  }, 30_000);
  afterAll(async () => {
    await redis?.stop();
  });

  it('a forced dependency, a firing alert, a dead job and a new error group, each with its verdict and link', async () => {
    const { app, bulwark } = await liveApp({
      listen: false,
      bulwark: {
        redisUrl: redis.url,
        alerts,
        queues: { pollMs: 20 },
        metricsHistory: { intervalMs: 1000, tiers: [{ resolutionS: 1, retentionMs: 3_600_000 }] },
      },
    });
    const overview = async () => {
      const res = await app.inject({ url: '/admin/api/overview', headers: liveAuth });
      expect(res.statusCode).toBe(200);
      return res.json<{ attention: AttentionItem[]; generatedAt: number }>();
    };
    expect((await overview()).attention).toEqual([]);

    bulwark.dependencies['redis']?.setForced(true);
    const history = bulwark.metrics.history;
    if (history === undefined || bulwark.alerts === undefined) throw new Error('history and alerts expected');
    history.register('app.checkout_p99_ms', () => 900);
    await history.sampleNow();
    await bulwark.alerts.evaluateOnce();
    bulwark.queues.process('mail', async () => {
      throw new Error('smtp down');
    });
    await bulwark.queues.add('mail', { to: 'a' }, { attempts: 1 });
    await until(
      async () => (await bulwark.queues.counts('mail')).get('mail')?.dead === 1,
      10_000,
      'a dead job',
    );
    bulwark.errors.capture(new TypeError('cart is undefined'));
    await bulwark.errors.flush();
    const [group] = await bulwark.errors.groups();

    const { attention, generatedAt } = await overview();
    expect(generatedAt).toBeGreaterThan(0);
    expect(attention.map((i) => [i.severity, i.verdict, i.link])).toEqual([
      ['critical', 'firing', '/admin/alerts?state=firing'],
      ['warning', 'forced', '/admin/dependencies'],
      ['warning', 'dead', '/admin/queues/mail?state=dead'],
      ['warning', 'new', `/admin/errors/${group?.fingerprint ?? '?'}`],
    ]);
    expect(attention[0]).toMatchObject({ title: 'Checkout is slow' });
    expect(attention[2]).toMatchObject({ title: '1 dead job in mail' });
    expect(attention[3]?.title).toContain('TypeError');
  });

  it('a queue whose oldest waiting job is older than the threshold is stuck, with its age', async () => {
    const { app, bulwark } = await liveApp({ listen: false, overview: { stuckAfterMs: 200 } });
    await bulwark.queues.add('reports', { n: 1 });
    await bulwark.queues.add('reports', { n: 2 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const res = await app.inject({ url: '/admin/api/overview', headers: liveAuth });
    expect(res.json<{ attention: AttentionItem[] }>().attention).toEqual([
      {
        severity: 'warning',
        verdict: 'stuck',
        title: 'reports is not keeping up',
        detail: expect.stringMatching(/^2 waiting; the oldest has waited \d+ s$/) as string,
        link: '/admin/queues/reports?state=waiting',
      },
    ]);
  });

  it('stays bounded with many alerts, error groups and jobs: at most 20 items per source', async () => {
    // 200 rules: the newest firing one critical, the others warnings (and a leftover state of a removed rule).
    const many: AlertsConfig = {
      ...alerts,
      rules: [
        ...(alerts.rules ?? []),
        ...Array.from({ length: 199 }, (_, i) => ({
          id: `rule-${i + 1}`,
          kind: 'threshold' as const,
          series: 'app.x',
          fireAbove: 1,
          severity: 'warning' as const,
          summary: `Rule ${i + 1}`,
        })),
      ],
    };
    const { app, bulwark } = await liveApp({ listen: false, bulwark: { alerts: many } });
    const now = Date.now();
    const db = bulwark.store.db;
    await db
      .insertInto('bulwark_alerts')
      .values(
        Array.from({ length: 201 }, (_, i) => ({
          rule: i === 0 ? 'checkout-slow' : i === 200 ? 'removed-rule' : `rule-${i}`,
          state: i % 2 === 0 ? 'firing' : 'inactive',
          since: now - i * 1000,
          value: i,
          transitions: 1,
          version: 1,
          updated_at: now,
        })),
      )
      .execute();
    await db
      .insertInto('bulwark_error_groups')
      .values(
        Array.from({ length: 200 }, (_, i) => ({
          fingerprint: `fp-${i}`,
          type: 'Error',
          message: `m ${i}`,
          culprit: '',
          source: 'server',
          state: 'open',
          count: 1,
          first_seen: now - i * 60_000,
          last_seen: now - i * 1000,
          first_release: 'r',
          last_release: 'r',
          resolved_at: null,
          regressions: 0,
        })),
      )
      .execute();
    for (let q = 0; q < 30; q++)
      await db
        .insertInto('bulwark_jobs')
        .values(
          Array.from({ length: 30 }, (_, i) => ({
            queue: `q${q}`,
            id: `j${i}`,
            state: 'dead',
            priority: 0,
            run_at: now,
            attempts: 1,
            max_attempts: 1,
            options: null,
            data: '{}',
            lease_owner: null,
            lease_until: null,
            last_error: 'x',
            created_at: now,
            started_at: null,
            finished_at: now,
          })),
        )
        .execute();
    const res = await app.inject({ url: '/admin/api/overview', headers: liveAuth });
    const { attention } = res.json<{ attention: AttentionItem[] }>();
    const count = (verdict: string) => attention.filter((i) => i.verdict === verdict).length;
    expect([count('firing'), count('dead'), count('new')]).toEqual([20, 20, 20]);
    // Critical first although it fired last; the removed rule's leftover state is not an alert.
    expect(attention[0]).toMatchObject({ severity: 'critical', title: 'Checkout is slow' });
    expect(attention.filter((i) => i.verdict === 'firing')[1]).toMatchObject({ title: 'Rule 198' });
    expect(attention.some((i) => i.detail.startsWith('removed-rule'))).toBe(false);
  });
});

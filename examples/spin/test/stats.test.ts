// Spin's queue statistics over real HTTP (the app listening on loopback, SQLite in a temporary
// directory): an imbalanced queue — 10 couples matched after men waited 14 minutes and women 1,
// then 30 more men and 2 nonbinary people waiting — seen by the admin's queue-stats (distribution,
// waits and success by gender and group, estimates, the recommendation with its numbers) behind the
// admin key; the public queue-status anonymised, rounded, cached and rate limited; Spin's series in
// the metrics history after a sample; its imbalance rule firing, beside the operator's receiver.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSpin } from '../src/app.js';
import type { AdminQueueStats, PublicQueueStatus } from '../src/stats.js';
import { spinAlertRules } from '../src/stats-routes.js';
import type { SpinUser } from '../src/store.js';

const ADMIN_KEY = 'spin-stats-admin-key-0123456789';
const dataDir = mkdtempSync(path.join(tmpdir(), 'spin-stats-'));
const MIN = 60_000;
let app: Awaited<ReturnType<typeof buildSpin>>;
let base: string;
/** Every user made, to check that the public status names none. */
const people: SpinUser[] = [];

beforeAll(async () => {
  const imbalance = spinAlertRules().find((rule) => rule.id === 'spin.imbalance-men');
  app = await buildSpin({
    env: { BULWARK_DATA_DIR: dataDir, LOG_LEVEL: 'warn', BULWARK_ADMIN_KEY: ADMIN_KEY },
    // The operator's alerting: a receiver, and Spin's imbalance rule retuned to fire at once.
    alerts: {
      receivers: [{ name: 'ops', type: 'webhook', url: 'http://127.0.0.1:9/hook' }],
      rules: [{ ...imbalance!, forMs: 0 }],
      evaluateEveryMs: 3_600_000,
      sendEveryMs: 3_600_000,
    },
    // The matcher stays out of the way: the test pairs the couples itself.
    spin: { matchIntervalMs: 3_600_000, pollMs: 20 },
  });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
  await seed();
}, 30_000);

afterAll(async () => {
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function user(name: string, gender: SpinUser['gender'], seeking: SpinUser['seeking']) {
  const made = await app.spin.store.createUser({ displayName: name, gender, seeking });
  people.push(made.user);
  return made;
}

/**
 * 10 couples matched now, the men after 14 minutes and the women after 1 (6 both liked, 4 not);
 * then 30 men seeking women and 2 nonbinary people seeking women join through the API.
 */
async function seed(): Promise<void> {
  const store = app.spin.store;
  const now = Date.now();
  for (let i = 0; i < 10; i += 1) {
    const man = (await user(`Man ${i}`, 'man', ['woman'])).user;
    const woman = (await user(`Woman ${i}`, 'woman', ['man'])).user;
    await store.join(man, now - 14 * MIN);
    await store.join(woman, now - MIN);
    const waiter = (u: SpinUser, joinedAt: number) => ({ ...u, userId: u.id, joinedAt });
    const id = await store.claim(waiter(man, now - 14 * MIN), waiter(woman, now - MIN), now);
    expect(id).toBeDefined();
    await store.vote(id!, man.id, 'like');
    await store.vote(id!, woman.id, i < 6 ? 'like' : 'pass');
  }
  const waiting = [
    ...(await Promise.all(Array.from({ length: 30 }, (_, i) => user(`Waiting man ${i}`, 'man', ['woman'])))),
    await user('Sam', 'nonbinary', ['woman']),
    await user('Alex', 'nonbinary', ['woman']),
  ];
  for (const { token } of waiting) {
    const res = await fetch(`${base}/api/queue/join`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
  }
  // Every instance learns of the joins from the feed: wait until this one has.
  const until = Date.now() + 5000;
  while (app.spin.waitingCounts.reduce((sum, n) => sum + n, 0) < 32) {
    if (Date.now() > until) throw new Error('the feed did not bring the joins within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function get<T>(url: string, key?: string): Promise<{ status: number; body: T; text: string }> {
  const res = await fetch(`${base}${url}`, {
    headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as T, text };
}

describe('queue statistics', () => {
  it('queue-stats refuses without the admin key and shows the imbalance, the waits and the recommendation with it', async () => {
    const none = await get<{ error: { code: string } }>('/api/admin/queue-stats');
    expect([none.status, none.body.error.code]).toEqual([401, 'BWK_ERR_ADMIN_UNAUTHORIZED']);
    const wrong = await get<{ error: { code: string } }>('/api/admin/queue-stats', 'not-the-key');
    expect([wrong.status, wrong.body.error.code]).toEqual([401, 'BWK_ERR_ADMIN_UNAUTHORIZED']);

    const { status, body } = await get<AdminQueueStats>('/api/admin/queue-stats', ADMIN_KEY);
    expect(status).toBe(200);
    expect(body.waiting).toEqual({
      total: 32,
      byGender: { woman: 0, man: 30, nonbinary: 2 },
      byGroup: { 'man:woman': 30, 'nonbinary:woman': 2 },
    });
    const hour = body.windows['1h'];
    expect(hour.matches).toBe(10);
    const { man, woman, nonbinary } = hour.byGender;
    expect(man).toMatchObject({
      matched: 10,
      avgWaitMs: 14 * MIN,
      settled: 10,
      success: 6,
      successRate: 0.6,
    });
    expect(woman).toMatchObject({ matched: 10, avgWaitMs: MIN, successRate: 0.6 });
    expect(nonbinary).toMatchObject({ matched: 0, avgWaitMs: null, p90WaitMs: null, successRate: null });
    // p90 from 13%-wide buckets: within 13% of the exact one.
    expect(Math.abs(man.p90WaitMs! - 14 * MIN) / (14 * MIN)).toBeLessThan(0.13);
    expect(Math.abs(woman.p90WaitMs! - MIN) / MIN).toBeLessThan(0.13);
    expect(hour.byGroup['man:woman']).toMatchObject({ matched: 10, avgWaitMs: 14 * MIN });
    expect(body.windows['7d']).toMatchObject({ matches: 10, sampleEvery: 1, sampled: 10 });

    const men = body.estimates.find((e) => e.group === 'man:woman');
    expect(men).toMatchObject({ waiting: 30 });
    expect(men?.estimate.sentence.length).toBeGreaterThan(10);

    const imbalance = body.recommendations.find((r) => r.code === 'IMBALANCE');
    expect(imbalance?.text).toMatch(
      /^Men outnumber women 4:1 among arrivals in the last hour: waits for men p90 15 minutes \(women 60 seconds\), 30 men waiting now\. Bring in more women/,
    );
    // Nothing said that is not so: success is 60%, the match rate has no baseline yet.
    expect(body.recommendations.map((r) => r.code)).toEqual(['IMBALANCE']);
  });

  it('queue-status is public, names nobody, rounds small counts, and is cached', async () => {
    const { status, body, text } = await get<PublicQueueStatus>('/api/queue-status');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      waiting: { total: 30, byGender: { woman: 0, man: 30, nonbinary: 0 } },
      last24h: { matches: 10, successRate: 0.6, waits: { nonbinary: null } },
    });
    expect(['pass', 'warn', 'fail']).toContain(body.health.status);
    expect(body.last24h.waits.man?.avgMs).toBe(14 * MIN);
    expect(body.last24h.waits.woman?.avgMs).toBe(MIN);
    for (const person of people) {
      expect(text).not.toContain(person.id);
      expect(text).not.toContain(person.displayName);
    }
    expect(text).not.toMatch(/"(id|userId|displayName|email)"/);
    const again = await get<PublicQueueStatus>('/api/queue-status');
    expect(again.body.at).toBe(body.at);
  });

  it('puts Spin’s series in the metrics history, and the imbalance rule fires on them', async () => {
    const history = app.bulwark.metrics.history!;
    await history.sampleNow();
    const names = await history.seriesNames('app.spin.');
    expect(names).toEqual(
      expect.arrayContaining([
        'app.spin.waiting{gender="man"}',
        'app.spin.waiting{gender="woman"}',
        'app.spin.matches_per_min',
        'app.spin.match_success_ratio',
        'app.spin.wait_p90_ms{gender="man"}',
        'app.spin.men_per_woman',
      ]),
    );
    const last = async (series: string) => {
      const now = history.now();
      return (await history.query(series, now - 60_000, now)).points.at(-1)?.last;
    };
    expect(await last('app.spin.waiting{gender="man"}')).toBe(30);
    expect(await last('app.spin.men_per_woman')).toBe(4);
    expect(await last('app.spin.match_success_ratio')).toBe(0.6);
    // 10 matches over the minutes up to now (the current one partly gone): 4 to 5 minutes.
    const perMinute = (await last('app.spin.matches_per_min'))!;
    expect(perMinute >= 2 && perMinute <= 2.5, String(perMinute)).toBe(true);
    expect(Math.abs((await last('app.spin.wait_p90_ms{gender="man"}'))! - 14 * MIN)).toBeLessThan(
      0.13 * 14 * MIN,
    );

    const alerts = app.bulwark.alerts!;
    // The operator's receiver is kept, and Spin's rules are there beside Bulwark's.
    expect(alerts.receivers).toEqual([{ name: 'ops', type: 'webhook' }]);
    expect(alerts.configuredRules.map((r) => r.id)).toEqual(
      expect.arrayContaining([
        'spin.imbalance-men',
        'spin.imbalance-women',
        'spin.match-rate-drop',
        'bulwark.memory',
      ]),
    );
    await alerts.evaluateOnce();
    const states = Object.fromEntries((await alerts.rules()).map((r) => [r.rule.id, r.status]));
    expect(states['spin.imbalance-men']).toMatchObject({ state: 'firing', value: 4 });
    expect(states['spin.imbalance-women']?.state).toBe('inactive');
    expect(states['spin.match-rate-drop']?.state).toBe('nodata');

    // The admin's trends read the same series.
    await app.bulwark.cache.namespace('spin-stats').clear();
    const { body } = await get<AdminQueueStats>('/api/admin/queue-stats', ADMIN_KEY);
    expect(body.trends?.series['app.spin.waiting{gender="man"}']?.at(-1)?.max).toBe(30);
  });

  it('queue-status is rate limited per IP', async () => {
    let refused: Response | undefined;
    for (let i = 0; i < 61 && refused === undefined; i += 1) {
      const res = await fetch(`${base}/api/queue-status`);
      if (res.status === 429) refused = res;
      else await res.arrayBuffer();
    }
    expect(refused?.status).toBe(429);
    expect(((await refused!.json()) as { error: { code: string } }).error.code).toBe(
      'BWK_ERR_RATELIMIT_EXCEEDED',
    );
  });
});

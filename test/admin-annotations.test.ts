// GET /admin/api/annotations over real sources: two Bulwark instances of different versions on one
// SQLite file (a deploy), config revisions in a real file, a flag killed and Redis forced onto its
// fallback through the admin API (a real redis-server), dependency modes in the metrics history, and
// the supervisor's persisted state. Also: at most 200 events, a failing source leaves the others,
// and the answer time with a large audit log and 7 days of history (SQLite and PostgreSQL).
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Insertable } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Annotations } from '../src/admin/annotations.js';
import { createBulwark, type Bulwark, type BulwarkOptions } from '../src/runtime/create.js';
import type { StoreTables } from '../src/store/types.js';
import { serviceSchema } from './fixtures/config-schema.js';
import { adminApp, adminAuth } from './helpers/admin.js';
import { LogCapture } from './helpers/app.js';
import { startPostgres, uniqueSchema, type PostgresServer } from './helpers/postgres.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { tempDir } from './helpers/store.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  await redis?.stop();
});

const dirs: string[] = [];
const opened: Bulwark[] = [];
const stateDirBefore = process.env['BULWARK_SUPERVISOR_STATE_DIR'];
afterEach(async () => {
  if (stateDirBefore === undefined) delete process.env['BULWARK_SUPERVISOR_STATE_DIR'];
  else process.env['BULWARK_SUPERVISOR_STATE_DIR'] = stateDirBefore;
  await Promise.all(opened.splice(0).map((b) => b.close()));
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function dir(): Promise<string> {
  const made = await tempDir();
  dirs.push(made);
  return made;
}

async function annotationsOf(app: FastifyInstance, from: number, to: number): Promise<Annotations> {
  const res = await app.inject({ url: `/admin/api/annotations?from=${from}&to=${to}`, headers: adminAuth });
  expect(res.statusCode, res.body).toBe(200);
  return res.json<Annotations>();
}

/** Writes mode buckets (1 primary, 0 fallback) of a dependency into the metrics history, 10 s apart. */
async function modeBuckets(
  bulwark: Bulwark,
  dependency: string,
  start: number,
  buckets: { min: number; max: number; last: number }[],
  resolution = 10,
): Promise<void> {
  const rows: StoreTables['bulwark_metric_points'][] = buckets.map((b, i) => ({
    series: `dependency.mode{dependency="${dependency}"}`,
    resolution,
    at: start + i * resolution * 1000,
    count: 1,
    sum: b.last,
    ...b,
  }));
  for (let i = 0; i < rows.length; i += 500)
    await bulwark.store.db
      .insertInto('bulwark_metric_points')
      .values(rows.slice(i, i + 500))
      .execute();
}

const up = { min: 1, max: 1, last: 1 };
const down = { min: 0, max: 0, last: 0 };

describe('admin API: annotations', () => {
  it('marks deploys, config revisions, flag changes, kill switches, automatic switches and restarts', async () => {
    const dataDir = await dir();
    const stateDir = await dir();
    const from = Date.now() - 60_000;
    const { app, instance: bulwark } = await adminApp({
      dataDir,
      store: {},
      env: { REDIS_URL: redis.url },
      serviceVersion: '1.0.0',
      config: { schema: serviceSchema, file: path.join(dataDir, 'config.json'), env: {}, watch: false },
    });
    // A second instance of a new version on the same store: a deploy (the first version is not).
    const next = await createBulwark({
      env: {},
      dataDir,
      logDestination: new LogCapture(),
      defaultMetrics: false,
      metricsHistory: false,
      serviceVersion: '1.1.0',
    } satisfies BulwarkOptions);
    opened.push(next);

    await bulwark.config!.set('name', 'renamed', { reason: 'rename', author: 'ada' });
    await bulwark.flags.set(
      {
        key: 'checkout.new',
        type: 'boolean',
        variants: { on: true, off: false },
        defaultVariant: 'on',
        enabled: true,
      },
      { actor: 'test' },
    );
    const kill = await app.inject({
      method: 'POST',
      url: '/admin/api/flags/checkout.new/kill',
      headers: adminAuth,
      payload: { reason: 'incident 7' },
    });
    expect(kill.statusCode).toBe(200);

    // Redis forced onto its fallback: the history sees the mode change right next to the kill switch.
    const history = bulwark.metrics.history!;
    await history.sampleNow();
    const forced = await app.inject({
      method: 'PUT',
      url: '/admin/api/dependencies/redis/forced',
      headers: adminAuth,
      payload: { forced: true, reason: 'drill' },
    });
    expect(forced.statusCode).toBe(200);
    await history.sampleNow();
    const [redisSeries] = await history.seriesNames('dependency.mode{dependency="redis"');
    const sampled = await history.query(redisSeries!, from, Date.now());
    expect(sampled.points.some((p) => p.min === 0)).toBe(true);

    // An automatic switch of another dependency and back, as the history recorded it.
    const t0 = Math.floor((Date.now() - 20 * 60_000) / 10_000) * 10_000;
    await modeBuckets(bulwark, 'search', t0, [up, up, down, down, up, { min: 0, max: 1, last: 1 }]);

    // The supervisor's persisted state (it does not answer on a socket here).
    process.env['BULWARK_SUPERVISOR_STATE_DIR'] = stateDir;
    const crashAt = new Date(Date.now() - 5 * 60_000).toISOString();
    const reloadAt = new Date(Date.now() - 4 * 60_000).toISOString();
    await writeFile(
      path.join(stateDir, 'state.json'),
      JSON.stringify({
        crashes: [
          { at: crashAt, slot: 1, reason: 'exit', exitCode: 1, signal: null },
          { at: new Date(Date.now() - 3 * DAY).toISOString(), slot: 0, reason: 'old', exitCode: 1 },
        ],
        lastReload: {
          ok: true,
          at: reloadAt,
          durationMs: 900,
          detail: '2 instances replaced',
          instances: [],
        },
      }),
    );

    const answer = await annotationsOf(app, t0 - 1000, Date.now() + 1000);
    expect(answer.unavailable).toEqual([]);
    expect(answer.truncated).toBe(false);
    const list = answer.annotations;
    expect(list.map((a) => a.at)).toEqual([...list.map((a) => a.at)].sort((a, b) => a - b));
    const titles = list.map((a) => `${a.kind}: ${a.title}`);
    expect(titles).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^deploy: Deploy: version 1\.1\.0 started on /),
        'config: Config revision 1: rename (ada)',
        'flag: Flag checkout.new killed by admin: incident 7',
        'flag: Flag checkout.new changed by test',
        'dependency: redis forced onto its fallback by admin: drill',
        'dependency: search switched to its fallback (automatic)',
        'dependency: search back on its primary (automatic)',
        'dependency: search switched to its fallback and back (automatic)',
        'restart: Slot 1 ended unplanned: exit (exit 1)',
        'restart: Reload done: 2 instances replaced',
      ]),
    );
    expect(titles.filter((t) => t.startsWith('deploy:'))).toHaveLength(1);
    // The history's redis switch is the kill switch's own: marked once.
    expect(titles.filter((t) => t.includes('redis'))).toEqual([
      'dependency: redis forced onto its fallback by admin: drill',
    ]);
    expect(titles.some((t) => t.includes('old'))).toBe(false);
    const search = list.filter((a) => a.title.startsWith('search'));
    expect(search.map((a) => a.at)).toEqual([t0 + 20_000, t0 + 40_000, t0 + 50_000]);
    expect(list.find((a) => a.kind === 'config')?.link).toBe('/admin/config?revision=1');
    expect(list.find((a) => a.kind === 'flag')?.link).toBe('/admin/flags/checkout.new');

    // A range before all of it is empty; a reversed range is refused.
    expect((await annotationsOf(app, t0 - 2 * HOUR, t0 - HOUR)).annotations).toEqual([]);
    const reversed = await app.inject({ url: '/admin/api/annotations?from=10&to=5', headers: adminAuth });
    expect([reversed.statusCode, reversed.json<{ error: { code: string } }>().error.code]).toEqual([
      400,
      'BWK_ERR_HTTP_VALIDATION',
    ]);
  });

  it('answers at most 200 events, the newest, and says so', async () => {
    const { app, instance: bulwark } = await adminApp();
    const start = Date.now() - 10 * 60_000;
    for (let i = 0; i < 250; i++)
      await bulwark.store.audit.append({
        actor: 'test',
        action: 'flag.set',
        target: `flag:f${i}`,
        detail: { reason: null },
        at: start + i * 1000,
      });
    const answer = await annotationsOf(app, start, Date.now());
    expect(answer.annotations).toHaveLength(200);
    expect(answer.truncated).toBe(true);
    expect(answer.annotations[0]?.title).toBe('Flag f50 changed by test');
    expect(answer.annotations.at(-1)?.title).toBe('Flag f249 changed by test');
  });

  it('a source that cannot be read is named in unavailable; the others still answer', async () => {
    const stateDir = await dir();
    const { app, instance: bulwark } = await adminApp();
    await bulwark.store.audit.append({ actor: 'test', action: 'flag.kill', target: 'flag:a', detail: null });
    process.env['BULWARK_SUPERVISOR_STATE_DIR'] = stateDir;
    await writeFile(path.join(stateDir, 'state.json'), '{ not json');
    const answer = await annotationsOf(app, Date.now() - HOUR, Date.now() + 1000);
    expect(answer.unavailable).toEqual(['supervisor']);
    expect(answer.annotations.map((a) => a.title)).toEqual(['Flag a killed by test']);
  });
});

/** A big store: 100 000 audit rows (2 000 of them flag changes) over 7 days, 7 days of two mode series. */
async function seedLarge(bulwark: Bulwark, now: number): Promise<void> {
  const rows: Insertable<StoreTables['bulwark_audit']>[] = [];
  for (let i = 0; i < 100_000; i++) {
    const flag = i % 50 === 0;
    rows.push({
      at: now - 7 * DAY + Math.floor((i * 7 * DAY) / 100_000),
      actor: 'seed',
      action: flag ? 'flag.set' : 'POST /queues/:queue/redrive',
      target: flag ? `flag:f${i % 1000}` : `/queues/q${i % 10}/redrive`,
      detail: null,
    });
  }
  await bulwark.store.db.transaction().execute(async (trx) => {
    for (let i = 0; i < rows.length; i += 500)
      await trx
        .insertInto('bulwark_audit')
        .values(rows.slice(i, i + 500))
        .execute();
  });
  // Every tier as the history keeps it: 10 s for 6 h, 1 min for 7 days, 1 h up to the last hour.
  for (const [resolution, span] of [
    [10, 6 * HOUR],
    [60, 7 * DAY],
    [3600, 7 * DAY - HOUR],
  ] as const) {
    const bucket = resolution * 1000;
    const start = Math.floor((now - 7 * DAY) / bucket) * bucket;
    const length = Math.floor(span / bucket);
    const buckets = Array.from({ length }, (_, i) => (i % 97 === 50 ? down : up));
    const first = resolution === 10 ? Math.floor((now - span) / bucket) * bucket : start;
    await modeBuckets(bulwark, 'redis', first, buckets, resolution);
    await modeBuckets(bulwark, 'search', first, buckets, resolution);
  }
}

/** Median of `runs` answers over 7 days and over the last hour, in ms (inject: no network). */
async function timeAnswers(
  app: FastifyInstance,
  now: number,
  runs = 15,
): Promise<{ week: number; hour: number }> {
  const median = async (from: number) => {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      await annotationsOf(app, from, now);
      times.push(performance.now() - started);
    }
    return times.sort((a, b) => a - b)[Math.floor(runs / 2)] ?? Infinity;
  };
  return { week: await median(now - 7 * DAY), hour: await median(now - HOUR) };
}

describe('admin API: annotations with a large store', () => {
  let pg: PostgresServer | undefined;
  afterAll(async () => {
    await pg?.stop();
  });

  for (const engine of ['sqlite', 'postgres'] as const) {
    it(`answers 7 days in well under a second (${engine}: 100 000 audit rows, two mode series in every tier, 20 revisions)`, async () => {
      const dataDir = await dir();
      await mkdir(dataDir, { recursive: true });
      if (engine === 'postgres') pg ??= await startPostgres();
      const { app, instance: bulwark } = await adminApp({
        dataDir,
        ...(engine === 'postgres'
          ? { databaseUrl: pg!.url, store: { schema: uniqueSchema() } }
          : { store: {} }),
        config: { schema: serviceSchema, file: path.join(dataDir, 'config.json'), env: {}, watch: false },
      });
      for (let n = 0; n < 20; n++) await bulwark.config!.set('port', 3000 + n, { reason: `step ${n}` });
      const now = Date.now();
      await seedLarge(bulwark, now);
      const week = await annotationsOf(app, now - 7 * DAY, now);
      expect(week.annotations).toHaveLength(200);
      expect(week.truncated).toBe(true);
      const times = await timeAnswers(app, now);
      console.log(
        `annotations on ${engine}: 7 days ${times.week.toFixed(1)} ms, last hour ${times.hour.toFixed(1)} ms (median of 15)`,
      );
      // Generous bounds for a shared, noisy machine; the figures above are what counts.
      expect(times.week).toBeLessThan(1000);
      expect(times.hour).toBeLessThan(1000);
    }, 120_000);
  }
});

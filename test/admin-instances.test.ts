import { rm } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { instancesPart, type InstancesPartOptions } from '../src/instances/part.js';
import type { InstanceRegistry, InstanceTables, InstanceView } from '../src/instances/registry.js';
import type { AnyPart } from '../src/parts/index.js';
import { createBulwark, type Bulwark, type BulwarkOptions } from '../src/runtime/create.js';
import { LogCapture } from './helpers/app.js';
import { liveApp, liveAuth } from './helpers/live.js';
import { startPostgres, uniqueSchema, type PostgresServer } from './helpers/postgres.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { tempDir } from './helpers/store.js';
import { until } from './helpers/wait.js';

/** The parts with the instances part tuned (a faster heartbeat for the tests that wait for one). */
const tuned =
  (options: InstancesPartOptions) =>
  (parts: AnyPart[]): AnyPart[] =>
    parts.map((part) => (part.name === 'instances' ? instancesPart(options) : part));

const dirs: string[] = [];
const opened: Bulwark[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((b) => b.close()));
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function other(options: BulwarkOptions): Promise<Bulwark> {
  const bulwark = await createBulwark({
    env: {},
    logDestination: new LogCapture(),
    defaultMetrics: false,
    metricsHistory: false,
    ...options,
  });
  opened.push(bulwark);
  return bulwark;
}

function registry(bulwark: Bulwark): InstanceRegistry {
  return bulwark.parts.get('instances') as InstanceRegistry;
}

describe('admin API: instances registry (two Bulwark instances on one SQLite file)', () => {
  it('lists both instances alive, newest first; a closed one is stopped and only listed with include=stopped', async () => {
    const dataDir = await tempDir();
    dirs.push(dataDir);
    const { app, bulwark } = await liveApp({
      bulwark: { dataDir, store: {}, serviceId: 'shop', serviceVersion: '1.2.3' },
      listen: false,
    });
    const b = await other({ dataDir, serviceId: 'shop', serviceVersion: '1.2.4' });

    const list = async (query = '') => {
      const res = await app.inject({ url: `/admin/api/instances${query}`, headers: liveAuth });
      expect(res.statusCode).toBe(200);
      return res.json<{ instances: InstanceView[] }>().instances;
    };
    const both = await list();
    expect(both.map((i) => i.instanceId)).toEqual([b.instanceId, bulwark.instanceId]);
    expect(both[1]).toMatchObject({
      serviceId: 'shop',
      version: '1.2.3',
      pid: process.pid,
      alive: true,
      dependencies: {},
    });
    expect(both[1]?.stoppedAt).toBeUndefined();
    expect(both[0]).toMatchObject({ version: '1.2.4', alive: true });

    await b.close();
    expect((await list()).map((i) => i.instanceId)).toEqual([bulwark.instanceId]);
    const all = await list('?include=stopped');
    expect(all.map((i) => [i.instanceId, i.alive])).toEqual([
      [b.instanceId, false],
      [bulwark.instanceId, true],
    ]);
    expect(all[0]?.stoppedAt).toBeGreaterThan(0);

    expect((await app.inject({ url: '/admin/api/instances' })).statusCode).toBe(401);
  });

  it('heartbeats keep last_seen fresh, and rows not seen for the retention are deleted', async () => {
    const dataDir = await tempDir();
    dirs.push(dataDir);
    const a = await other({ dataDir, parts: tuned({ heartbeatMs: 100, retentionMs: 60_000 }) });
    const db = a.store.db.withTables<InstanceTables>();
    const row = (id: string, lastSeen: number) => ({
      instance_id: id,
      service_id: 's',
      host: 'h',
      pid: 1,
      version: 'v',
      started_at: lastSeen,
      last_seen: lastSeen,
      stopped_at: null,
      dependencies: '{}',
      supervisor: null,
    });
    await db
      .insertInto('bulwark_instances')
      .values([row('gone', Date.now() - 61_000), row('lost', Date.now() - 59_000)])
      .execute();
    const first = (await registry(a).list()).find((i) => i.instanceId === a.instanceId)?.lastSeen ?? 0;
    await until(
      async () =>
        ((await registry(a).list()).find((i) => i.instanceId === a.instanceId)?.lastSeen ?? 0) > first,
      2_000,
      'a later heartbeat',
    );
    const ids = (await registry(a).list()).map((i) => [i.instanceId, i.alive]);
    expect(ids).toEqual([
      [a.instanceId, true],
      ['lost', false],
    ]);
  });
});

describe('instances registry with real Redis and PostgreSQL', () => {
  let redis: RedisServer;
  let pg: PostgresServer;
  beforeAll(async () => {
    [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([redis?.stop(), pg?.stop()]);
  });

  it('a dependency forced onto its fallback shows in the row within one heartbeat (no wait for the next)', async () => {
    const a = await other({
      databaseUrl: pg.url,
      store: { schema: uniqueSchema() },
      redisUrl: redis.url,
      parts: tuned({ heartbeatMs: 10_000 }),
    });
    const mine = async () => (await registry(a).list()).find((i) => i.instanceId === a.instanceId);
    expect((await mine())?.dependencies).toEqual({ redis: { mode: 'primary', forced: false } });
    const forced = Date.now();
    a.dependencies['redis']?.setForced(true);
    await until(
      async () => (await mine())?.dependencies['redis']?.forced === true,
      10_000,
      'forced in the row',
    );
    expect(Date.now() - forced).toBeLessThan(2_000);
    expect((await mine())?.dependencies).toEqual({ redis: { mode: 'fallback', forced: true } });
  });

  it('a frozen store skips beats (never more than one write in flight) and does not hold the close', async () => {
    const logs = new LogCapture();
    const a = await other({
      databaseUrl: pg.url,
      store: { schema: uniqueSchema() },
      storeQueryTimeoutMs: 60_000,
      logDestination: logs,
      parts: tuned({ heartbeatMs: 50 }),
    });
    await pg.pause();
    try {
      const beat = registry(a).beat();
      expect(registry(a).beat()).toBe(beat); // the one in flight, not a second write
      await new Promise((resolve) => setTimeout(resolve, 300)); // six heartbeats due meanwhile
      const started = Date.now();
      await registry(a).close();
      expect(Date.now() - started).toBeLessThan(2_500);
    } finally {
      await pg.resume();
    }
  }, 60_000);
});

import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bulwark as plugin, fastifyOptions } from '../src/http/plugin.js';
import { createBulwark, type Bulwark } from '../src/runtime/create.js';
import { AUDIT_REFUSED_TARGET } from '../src/store/index.js';
import { LogCapture } from './helpers/app.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { roomInWindow, until } from './helpers/wait.js';

const KEY = 'admin-key-for-tests-0123456789';

async function adminApp(options: {
  adminKey?: string;
  redisUrl?: string;
}): Promise<{ app: FastifyInstance; instance: Bulwark; logs: LogCapture }> {
  const logs = new LogCapture();
  const instance = await createBulwark({
    env: {},
    store: { sqliteFile: ':memory:' },
    logDestination: logs,
    defaultMetrics: false,
    rateLimitPolicies: { policies: [{ name: 'tight', limit: 1, windowMs: 60_000 }] },
    ...options,
  });
  const app = Fastify(fastifyOptions(instance));
  await app.register(plugin, {
    bulwark: instance,
    rateLimit: { default: false, routes: { '/limited': { by: 'ip' } } },
  });
  app.addHook('onClose', async () => instance.close());
  app.get('/limited', async () => ({ ok: true }));
  await app.ready();
  return { app, instance, logs };
}

const auth = { authorization: `Bearer ${KEY}` };

/** The detail of a refusal summary row. */
interface Refused {
  client: string;
  reason: string;
  count: number;
  overflow?: boolean;
}

describe('admin API', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('refuses every request without BULWARK_ADMIN_KEY, and tallies the attempt', async () => {
    const { app, instance } = await adminApp({});
    const res = await app.inject({ method: 'GET', url: '/admin/api/dependencies', headers: auth });
    expect(res.statusCode).toBe(403);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('BWK_ERR_ADMIN_DISABLED');
    await instance.store.audit.flush();
    const rows = await instance.store.audit.list({ target: AUDIT_REFUSED_TARGET });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      actor: 'anonymous',
      action: 'admin.refused',
      detail: {
        client: '127.0.0.1',
        reason: 'disabled',
        status: 403,
        count: 1,
        samples: ['GET /admin/api/dependencies'],
      },
    });
    await app.close();
  });

  it('refuses a missing or wrong key with 401, tallied by reason, without ever logging the key', async () => {
    const { app, instance, logs } = await adminApp({ adminKey: KEY });
    for (const headers of [
      {},
      { authorization: 'Bearer wrong-key-wrong-key-wrong' },
      { authorization: KEY },
    ]) {
      const res = await app.inject({ method: 'GET', url: '/admin/api/audit', headers });
      expect(res.statusCode).toBe(401);
      expect(res.json<{ error: { code: string } }>().error.code).toBe('BWK_ERR_ADMIN_UNAUTHORIZED');
    }
    await instance.store.audit.flush();
    const rows = await instance.store.audit.list({ target: AUDIT_REFUSED_TARGET });
    expect(rows.map((r) => [(r.detail as Refused).reason, (r.detail as Refused).count]).sort()).toEqual([
      ['missing-key', 2],
      ['wrong-key', 1],
    ]);
    expect(JSON.stringify(logs.lines)).not.toContain(KEY);
    expect(JSON.stringify(await instance.store.audit.list())).not.toContain(KEY);
    await app.close();
  });

  it('a flood of refused requests writes nothing per request, then bounded summaries that keep the count; real entries stay first', async () => {
    const { app, instance } = await adminApp({ adminKey: KEY });
    // A change (reads are not audited): asking to force a dependency that is not configured.
    const real = await app.inject({
      method: 'PUT',
      url: '/admin/api/dependencies/redis/forced',
      headers: auth,
      payload: { forced: true },
    });
    expect(real.statusCode).toBe(404);
    await until(async () => (await instance.store.audit.list()).length === 1);
    // 2 000 addresses of one IPv6 /64, then 1 200 IPv4 clients (more than the 1 000 keys tallied).
    const clients = [
      ...Array.from({ length: 2_000 }, (_, i) => `2001:db8:7:9:${(i + 1).toString(16)}::1`),
      ...Array.from({ length: 1_200 }, (_, i) => `198.51.${i >> 8}.${i & 255}`),
    ];
    for (const [i, remoteAddress] of clients.entries()) {
      const res = await app.inject({
        method: i % 2 === 0 ? 'GET' : 'DELETE',
        url: i % 2 === 0 ? '/admin/api/audit' : '/admin/api/queues/email/jobs/x',
        remoteAddress,
        headers: i % 3 === 0 ? {} : { authorization: 'Bearer not-the-key-at-all' },
      });
      expect(res.statusCode).toBe(401);
    }
    // Nothing was written per refused request.
    expect(await instance.store.audit.list({ limit: 500 })).toHaveLength(1);

    await instance.store.audit.flush();
    const summaries = await instance.store.audit.list({ target: AUDIT_REFUSED_TARGET, limit: 5_000 });
    expect(summaries.length).toBeLessThanOrEqual(1_001); // the key cap, plus one overflow row
    const details = summaries.map((r) => r.detail as Refused);
    expect(details.reduce((sum, d) => sum + d.count, 0)).toBe(clients.length);
    const v6 = details.filter((d) => d.client === '2001:db8:7:9::/64');
    expect(v6.map((d) => d.reason).sort()).toEqual(['missing-key', 'wrong-key']);
    expect(v6.reduce((sum, d) => sum + d.count, 0)).toBe(2_000);
    // Keys past the cap are folded into one overflow row, counted all the same.
    const overflow = details.filter((d) => d.overflow === true);
    expect(overflow).toHaveLength(1);
    expect(overflow[0]?.count).toBeGreaterThan(0);

    // The audit API shows real entries first; the summaries on request.
    const listed = await app.inject({ method: 'GET', url: '/admin/api/audit?limit=5', headers: auth });
    expect(listed.json<{ actor: string; action: string }[]>()[0]).toMatchObject({
      actor: 'admin',
      action: 'PUT /admin/api/dependencies/:name/forced',
    });
    expect(listed.json<{ action: string }[]>().some((r) => r.action === 'admin.refused')).toBe(false);
    const only = await app.inject({
      method: 'GET',
      url: '/admin/api/audit?refused=only&limit=5',
      headers: auth,
    });
    expect(only.json<{ action: string }[]>().map((r) => r.action)).toEqual(Array(5).fill('admin.refused'));
    await app.close();
  });

  it('lists dependencies, flips the Redis kill switch (audited with before/after) and releases it', async () => {
    const { app, instance } = await adminApp({ adminKey: KEY, redisUrl: redis.url });
    const list = await app.inject({ method: 'GET', url: '/admin/api/dependencies', headers: auth });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toEqual([expect.objectContaining({ name: 'redis', mode: 'primary', forced: false })]);
    const switchesBefore = list.json<{ switches: number; lastSwitchAt: number | null }[]>()[0]!;

    const forced = await app.inject({
      method: 'PUT',
      url: '/admin/api/dependencies/redis/forced',
      headers: auth,
      payload: { forced: true, reason: 'drill' },
    });
    expect(forced.statusCode).toBe(200);
    expect(forced.json()).toMatchObject({ name: 'redis', mode: 'fallback', forced: true, reason: 'forced' });
    // The switch is counted and timed.
    const sw = forced.json<{ switches: number; lastSwitchAt: number | null }>();
    expect(sw.switches).toBe(switchesBefore.switches + 1);
    expect(sw.lastSwitchAt).toBeGreaterThanOrEqual(switchesBefore.lastSwitchAt ?? 0);
    expect(Math.abs(Date.now() - sw.lastSwitchAt!)).toBeLessThan(5_000);
    expect(instance.dependencies['redis']?.mode).toBe('fallback');
    const health = (await app.inject({ method: 'GET', url: '/health' })).json<{
      checks: Record<string, { status: string }[]>;
    }>();
    expect(health.checks['redis:mode']?.[0]?.status).toBe('warn');
    const records = await instance.store.audit.list({ target: 'dependency:redis' });
    expect(records[0]).toMatchObject({
      actor: 'admin',
      action: 'dependency.force',
      detail: { before: false, after: true, reason: 'drill' },
    });

    await app.inject({
      method: 'PUT',
      url: '/admin/api/dependencies/redis/forced',
      headers: auth,
      payload: { forced: false },
    });
    const started = Date.now();
    while (instance.dependencies['redis']?.mode !== 'primary' && Date.now() - started < 5000)
      await new Promise((r) => setTimeout(r, 20));
    expect(instance.dependencies['redis']?.mode).toBe('primary');

    const unknown = await app.inject({
      method: 'PUT',
      url: '/admin/api/dependencies/nope/forced',
      headers: auth,
      payload: { forced: true },
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json<{ error: { code: string } }>().error.code).toBe('BWK_ERR_ADMIN_UNKNOWN_DEPENDENCY');
    const bad = await app.inject({
      method: 'PUT',
      url: '/admin/api/dependencies/redis/forced',
      headers: auth,
      payload: { forced: 'yes' },
    });
    expect(bad.statusCode).toBe(400);
    expect(instance.dependencies['redis']?.forced).toBe(false); // a bad request changes nothing
    await app.close();
  });

  it('shows the work waiting for a dependency: the cache journal and the queue spool, drained on failback', async () => {
    const { app, instance } = await adminApp({ adminKey: KEY, redisUrl: redis.url });
    const backlog = async () => {
      const res = await app.inject({ method: 'GET', url: '/admin/api/dependencies', headers: auth });
      expect(res.statusCode).toBe(200);
      const [dependency] =
        res.json<{ name: string; backlog: { name: string; pending: number | null }[] }[]>();
      return Object.fromEntries(dependency!.backlog.map((b) => [b.name, b.pending]));
    };
    expect(await backlog()).toEqual({ 'cache journal (default)': 0, 'queue spool': 0 });

    // On the fallback, cache writes are journaled and jobs spooled (no worker runs them here).
    instance.dependencies['redis']!.setForced(true);
    for (let i = 0; i < 3; i += 1) await instance.cache.set(`backlog-${i}`, i);
    await instance.queues.add('backlog', { n: 1 });
    await instance.queues.add('backlog', { n: 2 }, { delay: 60_000 });
    expect(await backlog()).toEqual({ 'cache journal (default)': 3, 'queue spool': 2 });

    // Back on Redis, the journal is replayed and the spool moved to BullMQ: nothing waits.
    instance.dependencies['redis']!.setForced(false);
    await until(async () => {
      const now = await backlog();
      return now['cache journal (default)'] === 0 && now['queue spool'] === 0;
    }, 10_000);
    expect(await instance.cache.get('backlog-2')).toBe(2);
    await app.close();
  });

  it('reads the rate limiter’s top offenders and the audit log, which records changes, not reads', async () => {
    const { app } = await adminApp({ adminKey: KEY });
    await roomInWindow(60_000, 5_000); // 3 refusals counted in one window
    for (let i = 0; i < 4; i += 1) await app.inject({ method: 'GET', url: '/limited' });
    const offenders = await app.inject({
      method: 'GET',
      url: '/admin/api/ratelimit/offenders?limit=5',
      headers: auth,
    });
    expect(offenders.statusCode).toBe(200);
    expect(offenders.json()).toEqual([
      expect.objectContaining({ policy: 'tight', key: 'ip:127.0.0.1', count: 3 }),
    ]);
    // Reads are not audited (a console refetching what it shows would fill the log); changes are.
    const before = await app.inject({ method: 'GET', url: '/admin/api/audit?limit=10', headers: auth });
    expect(before.json()).toEqual([]);
    await app.inject({
      method: 'PUT',
      url: '/admin/api/dependencies/redis/forced',
      headers: auth,
      payload: { forced: true },
    });
    const audit = await app.inject({ method: 'GET', url: '/admin/api/audit?limit=10', headers: auth });
    expect(audit.json<{ actor: string; action: string }[]>()).toEqual([
      expect.objectContaining({ actor: 'admin', action: 'PUT /admin/api/dependencies/:name/forced' }),
    ]);
    await app.close();
  });

  it('filters the audit log by actor, action prefix and target, and pages back with before (at most 200 a page)', async () => {
    const { app, instance } = await adminApp({ adminKey: KEY });
    for (let i = 0; i < 30; i++) {
      await instance.store.audit.append({
        actor: i % 3 === 0 ? 'key:ops' : 'cli:ann',
        action: i % 2 === 0 ? 'flag.kill' : 'queue.pause',
        target: i % 2 === 0 ? `flag:f${i}` : 'queue:mail',
      });
    }
    // A wildcard in the prefix matches only itself.
    await instance.store.audit.append({ actor: 'x', action: 'flagXkill', target: 'flag:y' });
    const list = async (query: string) => {
      const res = await app.inject({ method: 'GET', url: `/admin/api/audit${query}`, headers: auth });
      expect(res.statusCode, query).toBe(200);
      return res.json<{ id: number; actor: string; action: string; target: string }[]>();
    };
    const ops = await list('?actor=key%3Aops&limit=200');
    expect(ops).toHaveLength(10);
    expect(ops.every((r) => r.actor === 'key:ops')).toBe(true);
    const flags = await list('?action=flag.&limit=200');
    expect(flags).toHaveLength(15);
    expect(flags.every((r) => r.action === 'flag.kill')).toBe(true);
    expect(await list('?action=flag_&limit=200')).toEqual([]);
    expect(await list('?actor=key%3Aops&action=queue.&target=queue%3Amail&limit=200')).toHaveLength(5);
    // Pages back: no row twice, newest first.
    const first = await list('?limit=12');
    const second = await list(`?limit=12&before=${first.at(-1)!.id}`);
    const ids = [...first, ...second].map((r) => r.id);
    expect(new Set(ids).size).toBe(24);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    const tooMany = await app.inject({ method: 'GET', url: '/admin/api/audit?limit=201', headers: auth });
    expect(tooMany.statusCode).toBe(400);
  });

  it('a reload asked of a process not under the supervisor is a 409 naming why, not a server error', async () => {
    const { app } = await adminApp({ adminKey: KEY });
    const res = await app.inject({
      method: 'POST',
      url: '/admin/api/supervisor/reload',
      headers: auth,
      payload: {},
    });
    expect([res.statusCode, res.json<{ error: { code: string } }>().error.code]).toEqual([
      409,
      'BWK_ERR_ADMIN_NOT_SUPERVISED',
    ]);
  });
});

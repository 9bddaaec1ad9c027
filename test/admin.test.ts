import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bulwark as plugin, fastifyOptions } from '../src/http/plugin.js';
import { createBulwark, type Bulwark } from '../src/runtime/create.js';
import { LogCapture } from './helpers/app.js';
import { startRedis, type RedisServer } from './helpers/redis.js';

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

describe('admin API', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('refuses every request without BULWARK_ADMIN_KEY, and audits the attempt', async () => {
    const { app, instance } = await adminApp({});
    const res = await app.inject({ method: 'GET', url: '/admin/api/dependencies', headers: auth });
    expect(res.statusCode).toBe(403);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('BWK_ERR_ADMIN_DISABLED');
    const audit = await instance.store.audit.list();
    expect(audit[0]).toMatchObject({
      actor: 'anonymous',
      action: 'GET /admin/api/dependencies',
      detail: { status: 403 },
    });
    await app.close();
  });

  it('refuses a missing or wrong key with 401, audited, without ever logging the key', async () => {
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
    expect((await instance.store.audit.list()).filter((r) => r.actor === 'anonymous')).toHaveLength(3);
    expect(JSON.stringify(logs.lines)).not.toContain(KEY);
    expect(JSON.stringify(await instance.store.audit.list())).not.toContain(KEY);
    await app.close();
  });

  it('lists dependencies, flips the Redis kill switch (audited with before/after) and releases it', async () => {
    const { app, instance } = await adminApp({ adminKey: KEY, redisUrl: redis.url });
    const list = await app.inject({ method: 'GET', url: '/admin/api/dependencies', headers: auth });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toEqual([expect.objectContaining({ name: 'redis', mode: 'primary', forced: false })]);

    const forced = await app.inject({
      method: 'PUT',
      url: '/admin/api/dependencies/redis/forced',
      headers: auth,
      payload: { forced: true, reason: 'drill' },
    });
    expect(forced.statusCode).toBe(200);
    expect(forced.json()).toMatchObject({ name: 'redis', mode: 'fallback', forced: true, reason: 'forced' });
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

  it('reads the rate limiter’s top offenders and the audit log', async () => {
    const { app } = await adminApp({ adminKey: KEY });
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
    const audit = await app.inject({ method: 'GET', url: '/admin/api/audit?limit=10', headers: auth });
    expect(audit.json<{ actor: string; action: string }[]>()[0]).toMatchObject({
      actor: 'admin',
      action: 'GET /admin/api/ratelimit/offenders',
    });
    await app.close();
  });
});

import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { bulwark as plugin, fastifyOptions } from '../src/http/plugin.js';
import { createBulwark } from '../src/runtime/create.js';
import { roomInWindow } from './helpers/wait.js';

describe('rate limiting through createBulwark and the Bulwark plugin', () => {
  it('limits routes with bulwark.rateLimiter: IETF headers, coded 429 with Retry-After, opt-out', async () => {
    const instance = await createBulwark({
      env: {},
      store: { sqliteFile: ':memory:' },
      logLevel: 'silent',
      defaultMetrics: false,
      rateLimitPolicies: { policies: [{ name: 'tight', limit: 3, windowMs: 60_000 }] },
    });
    const app = Fastify(fastifyOptions(instance));
    await app.register(plugin, { bulwark: instance, apiDocs: false, rateLimit: { default: { by: 'ip' } } });
    app.addHook('onClose', async () => instance.close());
    app.get('/limited', async () => ({ ok: true }));
    app.get('/free', { config: { rateLimit: false } }, async () => ({ ok: true }));

    await roomInWindow(60_000, 5_000); // the refusals below are counted in one window
    const statuses: number[] = [];
    for (let i = 0; i < 4; i += 1)
      statuses.push((await app.inject({ method: 'GET', url: '/limited' })).statusCode);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const refused = await app.inject({ method: 'GET', url: '/limited' });
    expect(refused.statusCode).toBe(429);
    expect(refused.json<{ error: { code: string; requestId: string } }>().error).toMatchObject({
      code: 'BWK_ERR_RATELIMIT_EXCEEDED',
      requestId: refused.headers['x-request-id'],
    });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.headers['ratelimit-policy']).toBe('"tight";q=3;w=60');
    expect(String(refused.headers['ratelimit'])).toMatch(/^"tight";r=0;t=\d+$/);
    expect((await app.inject({ method: 'GET', url: '/free' })).statusCode).toBe(200);
    for (let i = 0; i < 5; i += 1)
      expect((await app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(
      /bulwark_ratelimit_decisions_total\{policy="tight",result="limited",source="memory"\} 2/,
    );
    expect(instance.rateLimiter.topOffenders(5)[0]).toMatchObject({ policy: 'tight', key: 'ip:127.0.0.1' });
    await app.close();
  });
});

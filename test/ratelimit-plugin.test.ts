// The rate-limit Fastify plugin through app.inject(): headers, the coded 429, rule precedence,
// keys, metrics and top offenders. Memory-only limiters on an injected clock: no sleeps.
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { Registry } from 'prom-client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { isBulwarkError } from '../src/errors/index.js';
import { errorHandler } from '../src/http/error-handler.js';
import { hashApiKey, keyFrom } from '../src/ratelimit/keys.js';
import { createRateLimiter } from '../src/ratelimit/limiter.js';
import { rateLimit, type RateLimitPluginOptions } from '../src/ratelimit/plugin.js';
import type { RateLimiter } from '../src/ratelimit/types.js';
import { testApp } from './helpers/app.js';

const START = 1_700_000_040_000; // the start of a minute: t counts down from 60

function limiter(registry?: Registry): RateLimiter {
  const made = createRateLimiter({
    policies: [
      { name: 'default', limit: 3, windowMs: 60_000 },
      { name: 'strict', limit: 1, windowMs: 10_000 },
    ],
    now: () => START,
    ...(registry === undefined ? {} : { registry }),
  });
  onTestFinished(() => made.close());
  return made;
}

/** An app with the coded error handler, the plugin and a few routes; closed when the test ends. */
async function app(
  opts: Partial<RateLimitPluginOptions> & { limiter: RateLimiter },
): Promise<FastifyInstance> {
  const made = Fastify({ trustProxy: true });
  onTestFinished(() => made.close());
  made.setErrorHandler(errorHandler(false));
  await made.register(rateLimit, { default: { by: 'ip' }, ...opts });
  made.get('/', async () => ({ ok: true }));
  made.get('/items/:id', async () => ({ ok: true }));
  made.get('/open', { config: { rateLimit: false } }, async () => ({ ok: true }));
  made.get('/keyed', { config: { rateLimit: { policy: 'strict', by: 'apiKey' } } }, async () => ({
    ok: true,
  }));
  await made.ready();
  return made;
}

describe('rate-limit plugin', () => {
  it('sets RateLimit-Policy and RateLimit on every limited response, then answers a coded 429', async () => {
    const server = await app({ limiter: limiter() });
    for (const r of [2, 1, 0]) {
      const res = await server.inject({ url: '/' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['ratelimit-policy']).toBe('"default";q=3;w=60');
      expect(res.headers['ratelimit']).toBe(`"default";r=${r};t=60`);
      expect(res.headers['retry-after']).toBeUndefined();
    }
    const refused = await server.inject({ url: '/', headers: { 'x-request-id': 'abc' } });
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('60');
    expect(refused.headers['ratelimit']).toBe('"default";r=0;t=60');
    expect(refused.headers['ratelimit-policy']).toBe('"default";q=3;w=60');
    expect(refused.json()).toEqual({
      error: {
        code: 'BWK_ERR_RATELIMIT_EXCEEDED',
        message: 'Rate limit exceeded for policy default: retry in 60 s',
        requestId: refused.json<{ error: { requestId: string } }>().error.requestId,
      },
    });
    // The default rule also covers unmatched requests, which scanners produce in bulk.
    expect((await server.inject({ url: '/nowhere' })).headers['ratelimit']).toBe('"default";r=0;t=60');
  });

  it('applies route config over the routes map over the default; false opts out', async () => {
    const server = await app({
      limiter: limiter(),
      routes: { '/items/:id': { policy: 'strict', by: 'ip', points: 1 }, '/': false },
    });
    const root = await server.inject({ url: '/' });
    expect(root.statusCode).toBe(200);
    expect(root.headers['ratelimit']).toBeUndefined();
    const open = await server.inject({ url: '/open' });
    expect(open.headers['ratelimit-policy']).toBeUndefined();
    // Routes match by their template, so /items/1 and /items/2 share the route's rule and counter.
    expect((await server.inject({ url: '/items/1' })).headers['ratelimit']).toBe('"strict";r=0;t=10');
    const second = await server.inject({ url: '/items/2' });
    expect(second.statusCode).toBe(429);
    expect(second.headers['retry-after']).toBe('10');
  });

  it('keys by client IP as trustProxy resolves it, and by hashed API key', async () => {
    const limiterUsed = limiter();
    const server = await app({ limiter: limiterUsed });
    const from = (ip: string) => ({ url: '/', headers: { 'x-forwarded-for': ip } });
    for (let i = 0; i < 3; i++) await server.inject(from('10.0.0.1'));
    expect((await server.inject(from('10.0.0.1'))).statusCode).toBe(429);
    expect((await server.inject(from('10.0.0.2'))).statusCode).toBe(200);

    const secret = 'sk_live_abcdef';
    const keyed = (key?: string) => ({
      url: '/keyed',
      headers: key === undefined ? {} : { 'x-api-key': key },
    });
    expect((await server.inject(keyed(secret))).statusCode).toBe(200);
    expect((await server.inject(keyed(secret))).statusCode).toBe(429);
    expect((await server.inject(keyed('another'))).statusCode).toBe(200);
    // No key: limited by IP under the same policy.
    expect((await server.inject(keyed())).statusCode).toBe(200);
    expect((await server.inject(keyed())).statusCode).toBe(429);

    const offenders = limiterUsed.topOffenders(10);
    expect(offenders).toEqual(
      expect.arrayContaining([
        { policy: 'default', key: 'ip:10.0.0.1', count: 1, overcount: 0 },
        { policy: 'strict', key: `key:${hashApiKey(secret)}`, count: 1, overcount: 0 },
        { policy: 'strict', key: 'ip:127.0.0.1', count: 1, overcount: 0 },
      ]),
    );
    expect(JSON.stringify(offenders)).not.toContain(secret);
  });

  it('keys by user, falling back to the IP', () => {
    const request = { ip: '1.2.3.4', headers: { 'x-user': 'u7' } } as never;
    const user = (req: FastifyRequest) => req.headers['x-user'] as string | undefined;
    expect(keyFrom(request, { by: 'user', user })).toBe('user:u7');
    expect(keyFrom(request, { by: 'user', user: () => undefined })).toBe('ip:1.2.3.4');
    expect(keyFrom(request, { by: 'apiKey', header: 'X-User' })).toBe(`key:${hashApiKey('u7')}`);
    expect(hashApiKey('x')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('counts decisions by policy, result and source, and bounds the offenders list', async () => {
    const registry = new Registry();
    const limiterUsed = createRateLimiter({
      policies: [
        { name: 'tiny', limit: 1, windowMs: 60_000 },
        { name: 'strict', limit: 1, windowMs: 10_000 },
      ],
      now: () => START,
      registry,
      offenderCapacity: 3,
    });
    onTestFinished(() => limiterUsed.close());
    const server = await app({ limiter: limiterUsed, default: { policy: 'tiny', by: 'ip' } });
    for (let ip = 1; ip <= 5; ip++) {
      for (let n = 0; n < ip + 1; n++)
        await server.inject({ url: '/', headers: { 'x-forwarded-for': `10.0.0.${ip}` } });
    }
    const values = (await registry.getSingleMetric('bulwark_ratelimit_decisions_total')?.get())?.values;
    expect(values).toEqual(
      expect.arrayContaining([
        { labels: { policy: 'tiny', result: 'allowed', source: 'memory' }, value: 5 },
        { labels: { policy: 'tiny', result: 'limited', source: 'memory' }, value: 15 },
      ]),
    );
    // Capacity 3: the heaviest keys survive, replaced ones carry their possible overcount.
    const top = limiterUsed.topOffenders(10);
    expect(top).toHaveLength(3);
    expect(top[0]).toMatchObject({ key: 'ip:10.0.0.5', count: 5 + top[0]!.overcount });
    // A second limiter on the same registry reuses the counter instead of failing to register.
    expect(() =>
      createRateLimiter({ policies: [{ name: 'x', limit: 1, windowMs: 1000 }], registry }),
    ).not.toThrow();
  });

  it('rejects unknown policies and a user rule without a function at registration', async () => {
    const failing = async (opts: RateLimitPluginOptions, route?: object) => {
      const server = Fastify();
      void server.register(rateLimit, opts);
      if (route !== undefined) {
        void server.register(async (inner) => {
          inner.get('/x', { config: { rateLimit: route as never } }, async () => 1);
        });
      }
      const error: unknown = await server.ready().then(
        () => undefined,
        (e: unknown) => e,
      );
      await server.close().catch(() => undefined);
      return error;
    };
    const errors = [
      await failing({ limiter: limiter(), default: { policy: 'nope', by: 'ip' } }),
      await failing({ limiter: limiter(), default: { by: 'user' } as never }),
      await failing({ limiter: limiter(), default: { by: 'ip', points: 0 } }),
      await failing({ limiter: limiter(), default: false, routes: { '/y': { by: 'ip', policy: 'nope' } } }),
      await failing({ limiter: limiter(), default: false }, { by: 'ip', policy: 'nope' }),
    ];
    for (const error of errors)
      expect(isBulwarkError(error, 'BWK_ERR_RATELIMIT_OPTIONS'), String(error)).toBe(true);
  });

  it('composes with the Bulwark plugin: its error handler writes the 429 with the request id', async () => {
    const { app: server } = await testApp((a) => {
      void a.register(rateLimit, { limiter: limiter(), default: { policy: 'strict', by: 'ip' } });
      a.get('/limited', async () => ({ ok: true }));
    });
    onTestFinished(() => server.close());
    expect((await server.inject({ url: '/limited' })).statusCode).toBe(200);
    const refused = await server.inject({ url: '/limited' });
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('10');
    expect(refused.json()).toEqual({
      error: {
        code: 'BWK_ERR_RATELIMIT_EXCEEDED',
        message: 'Rate limit exceeded for policy strict: retry in 10 s',
        requestId: refused.headers['x-request-id'],
      },
    });
  });
});

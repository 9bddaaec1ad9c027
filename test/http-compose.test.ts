// The Fastify side as composable plugins: the core alone, the core plus one capability, a capability
// without the core (refused by name), and the one-line plugin with everything.
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import {
  bulwark,
  bulwarkAdmin,
  bulwarkBrowserErrors,
  bulwarkCore,
  bulwarkRateLimit,
  fastifyOptions,
} from '../src/fastify.js';
import { createBulwark, type Bulwark } from '../src/runtime/create.js';
import { LogCapture } from './helpers/app.js';

const KEY = 'compose-admin-key-0123456789abcdef';
const open: { app: FastifyInstance; bw: Bulwark }[] = [];
afterEach(async () => {
  for (const { app, bw } of open.splice(0)) {
    await app.close();
    await bw.close();
  }
});

async function app(register: (app: FastifyInstance, bw: Bulwark) => PromiseLike<unknown>) {
  const bw = await createBulwark({
    env: { BULWARK_ADMIN_KEY: KEY },
    store: { sqliteFile: ':memory:' },
    logDestination: new LogCapture(),
    defaultMetrics: false,
    metricsHistory: false,
  });
  const server = Fastify(fastifyOptions(bw));
  open.push({ app: server, bw });
  await register(server, bw);
  server.get('/orders', async () => []);
  await server.ready();
  return server;
}

const status = async (server: FastifyInstance, method: 'GET' | 'POST', url: string) =>
  (
    await server.inject({
      method,
      url,
      headers: { authorization: `Bearer ${KEY}` },
      ...(method === 'POST' ? { payload: { message: 'x' } } : {}),
    })
  ).statusCode;

describe('Bulwark as Fastify plugins', () => {
  it('the core alone: probes, metrics, API docs, coded 404s; no admin API, no browser error route', async () => {
    const server = await app((s, bw) => s.register(bulwarkCore, { bulwark: bw }));
    expect(await status(server, 'GET', '/health/ready')).toBe(200);
    expect(await status(server, 'GET', '/metrics')).toBe(200);
    expect(await status(server, 'GET', '/api-docs/json')).toBe(200);
    expect(await status(server, 'GET', '/admin/api/flags')).toBe(404);
    expect(await status(server, 'POST', '/errors/browser')).toBe(404);
    const docs = await server.inject({ url: '/api-docs/json' });
    expect(Object.keys(docs.json<{ paths: object }>().paths)).toContain('/orders');
  });

  it('the core plus the admin API, or plus the browser error route: each adds only its own routes', async () => {
    const admin = await app(async (s, bw) => {
      await s.register(bulwarkCore, { bulwark: bw });
      await s.register(bulwarkAdmin);
    });
    expect(await status(admin, 'GET', '/admin/api/flags')).toBe(200);
    expect(await status(admin, 'POST', '/errors/browser')).toBe(404);
    const browser = await app(async (s, bw) => {
      await s.register(bulwarkCore, { bulwark: bw });
      await s.register(bulwarkBrowserErrors);
    });
    expect(await status(browser, 'POST', '/errors/browser')).toBe(202);
    expect(await status(browser, 'GET', '/admin/api/flags')).toBe(404);
  });

  it('a capability plugin without the core is refused, naming the core', async () => {
    const server = Fastify();
    await expect(server.register(bulwarkRateLimit, { default: false }).ready()).rejects.toThrow(
      /bulwark-core/,
    );
    await server.close();
  });

  it('the one-line plugin registers the core and every capability', async () => {
    const server = await app((s, bw) => s.register(bulwark, { bulwark: bw }));
    expect(await status(server, 'GET', '/health/ready')).toBe(200);
    expect(await status(server, 'GET', '/admin/api/flags')).toBe(200);
    expect(await status(server, 'POST', '/errors/browser')).toBe(202);
  });
});

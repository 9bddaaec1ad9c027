import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { bulwark as plugin, fastifyOptions } from '../src/http/plugin.js';
import { createBulwark } from '../src/runtime/create.js';
import { LogCapture } from './helpers/app.js';
import { checkoutFlag } from './helpers/flags.js';

// With fastifyOptions() the outcomes ride on the log controller; without, on an onResponse hook.
describe.each([
  ['with fastifyOptions()', true],
  ['on a plain Fastify', false],
] as const)('request-scoped flags feed guarded rollouts (%s)', (_name, withOptions) => {
  it('a new code path that fails behind a guarded rollout is rolled back from the requests it served', async () => {
    const bulwark = await createBulwark({
      env: {},
      store: { sqliteFile: ':memory:' },
      logDestination: new LogCapture(),
      defaultMetrics: false,
    });
    const app = withOptions ? Fastify(fastifyOptions(bulwark)) : Fastify();
    await app.register(plugin, {
      bulwark,
      apiDocs: false,
      flags: { context: (request) => ({ targetingKey: String(request.headers['x-user'] ?? '') }) },
    });
    app.get('/checkout', async (request, reply) => {
      // The new path is broken: every request served the treatment fails.
      if (request.flag('new-checkout', false)) return reply.code(500).send({ error: 'broken' });
      return { ok: true };
    });
    app.addHook('onClose', async () => bulwark.close());
    try {
      await app.ready();
      await bulwark.flags.set({ ...checkoutFlag, rules: [] }, { actor: 'test' });
      await bulwark.rollouts.start(
        'new-checkout',
        { steps: [50, 100], stepMs: 60_000, minSamples: 20, maxErrorRateIncrease: 0.01, maxLatencyRatio: 5 },
        { actor: 'test' },
      );
      await bulwark.rollouts.tick();
      const statuses: number[] = [];
      for (let i = 0; i < 120; i += 1) {
        const res = await app.inject({ url: '/checkout', headers: { 'x-user': `user-${i}` } });
        statuses.push(res.statusCode);
      }
      expect(statuses.filter((s) => s === 500).length).toBeGreaterThan(20); // both arms were served
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(20);
      await bulwark.rollouts.tick();
      const state = await bulwark.rollouts.status('new-checkout');
      expect(state).toMatchObject({ status: 'rolled-back' });
      expect(state?.why).toContain('error rate 100.00%');
      expect(bulwark.flags.get('new-checkout')?.rollout?.percentage).toBe(0);
      const after = await app.inject({ url: '/checkout', headers: { 'x-user': 'user-1' } });
      expect(after.statusCode).toBe(200); // nobody gets the broken path any more
    } finally {
      await app.close();
    }
  });
});

describe('request-scoped flags on a server with routes outside the plugin', () => {
  // The outcome listener sees every request of the server (the log controller), also those of
  // contexts whose requests never got the flags slot (health, metrics, 404s, the admin API): it
  // used to read `.length` of undefined there and crash the process on the first /health probe.
  it('health, metrics, admin and unmatched requests are answered and the server stays up', async () => {
    const bulwark = await createBulwark({
      env: {},
      store: { sqliteFile: ':memory:' },
      logDestination: new LogCapture(),
      defaultMetrics: false,
    });
    const app = Fastify(fastifyOptions(bulwark));
    await app.register(plugin, { bulwark, apiDocs: false, flags: {} });
    app.get('/checkout', async (request) => ({ checkout: request.flag('new-checkout', false) }));
    app.addHook('onClose', async () => bulwark.close());
    try {
      await bulwark.flags.set({ ...checkoutFlag, rules: [] }, { actor: 'test' });
      const url = await app.listen({ port: 0, host: '127.0.0.1' });
      const statuses: Record<string, number> = {};
      for (const path of ['/health', '/health/live', '/metrics', '/admin/api/flags', '/nope', '/checkout'])
        statuses[path] = (await fetch(`${url}${path}`)).status;
      expect(statuses).toMatchObject({ '/health': 200, '/health/live': 200, '/metrics': 200, '/nope': 404 });
      expect(statuses['/admin/api/flags']).toBe(403); // no admin key configured: refused
      expect(statuses['/checkout']).toBe(200);
      expect((await fetch(`${url}/health/live`)).status).toBe(200);
    } finally {
      await app.close();
    }
  });
});

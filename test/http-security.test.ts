import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { isBulwarkError } from '../src/errors/index.js';
import { loadSettings, redactSettings } from '../src/settings/index.js';
import type { BulwarkOptions } from '../src/runtime/create.js';
import { testApp } from './helpers/app.js';

const ADMIN_KEY = 'admin-key-for-tests-0123456789';
const METRICS_TOKEN = 'metrics-token-for-tests-98765';
const as = (key: string) => ({ authorization: `Bearer ${key}` });

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function app(options: BulwarkOptions = {}): Promise<FastifyInstance> {
  const { app: made } = await testApp(() => undefined, {
    defaultMetrics: false,
    metricsHistory: false,
    ...options,
  });
  apps.push(made);
  return made;
}

/** Status of `GET url`, with the error code when refused. */
async function status(server: FastifyInstance, url: string, headers: Record<string, string> = {}) {
  const res = await server.inject({ method: 'GET', url, headers });
  return res.statusCode === 401
    ? `401 ${res.json<{ error: { code: string } }>().error.code} ${String(res.headers['www-authenticate'])}`
    : res.statusCode;
}

const REFUSED = '401 BWK_ERR_HTTP_UNAUTHORIZED Bearer realm="bulwark"';

describe('metrics, health and API docs', () => {
  it('are open by default, even with an admin key set', async () => {
    const server = await app({ adminKey: ADMIN_KEY });
    for (const url of [
      '/metrics',
      '/api-docs/json',
      '/api-docs/',
      '/health',
      '/health/live',
      '/health/ready',
    ])
      expect([url, await status(server, url)]).toEqual([url, 200]);
  });

  it('answer a coded 401 without a key once protected; the admin key opens all, the metrics token all but the docs', async () => {
    const server = await app({
      adminKey: ADMIN_KEY,
      metricsToken: METRICS_TOKEN,
      protectEndpoints: 'metrics, api-docs,health',
    });
    for (const url of ['/metrics', '/api-docs/json', '/api-docs/yaml', '/api-docs/', '/health']) {
      expect([url, await status(server, url)]).toEqual([url, REFUSED]);
      expect([url, await status(server, url, as('not-the-key-at-all-000'))]).toEqual([url, REFUSED]);
      expect([url, await status(server, url, as(ADMIN_KEY))]).toEqual([url, 200]);
    }
    expect(await status(server, '/metrics', as(METRICS_TOKEN))).toBe(200);
    expect(await status(server, '/health', as(METRICS_TOKEN))).toBe(200);
    expect(await status(server, '/api-docs/json', as(METRICS_TOKEN))).toBe(REFUSED);
    // HEAD is guarded like GET.
    expect((await server.inject({ method: 'HEAD', url: '/health' })).statusCode).toBe(401);
    // Probes stay open unless listed.
    expect(await status(server, '/health/live')).toBe(200);
    expect(await status(server, '/health/ready')).toBe(200);
    const refused = await server.inject({ method: 'GET', url: '/metrics' });
    expect(refused.json()).toEqual({
      error: {
        code: 'BWK_ERR_HTTP_UNAUTHORIZED',
        message:
          'A valid key is required for metrics (Authorization: Bearer <BULWARK_ADMIN_KEY or BULWARK_METRICS_TOKEN>)',
        requestId: refused.headers['x-request-id'],
      },
    });
    expect(refused.body).not.toContain('# HELP');
    // The document says which routes need a key.
    const spec = (
      await server.inject({ method: 'GET', url: '/api-docs/json', headers: as(ADMIN_KEY) })
    ).json<{
      paths: Record<string, { get: { security?: unknown[] } }>;
    }>();
    expect(spec.paths['/metrics']?.get.security).toEqual([{ adminKey: [] }, { metricsToken: [] }]);
    expect(spec.paths['/health/live']?.get.security).toBeUndefined();
  });

  it('probes are guarded only when listed explicitly', async () => {
    const server = await app({ adminKey: ADMIN_KEY, protectEndpoints: 'health/live,health/ready' });
    expect(await status(server, '/health/live')).toBe(REFUSED);
    expect(await status(server, '/health/ready')).toBe(REFUSED);
    expect(await status(server, '/health/ready', as(ADMIN_KEY))).toBe(200);
    expect(await status(server, '/health')).toBe(200);
  });

  it('a metrics token alone protects /metrics for scrapers and nothing else', async () => {
    const server = await app({ metricsToken: METRICS_TOKEN });
    expect(await status(server, '/metrics')).toBe(REFUSED);
    expect(await status(server, '/metrics', as(METRICS_TOKEN))).toBe(200);
    expect(await status(server, '/health')).toBe(200);
    expect(await status(server, '/api-docs/json')).toBe(200);
  });
});

describe('protection settings', () => {
  function problems(env: NodeJS.ProcessEnv): string[] {
    try {
      loadSettings({}, env);
    } catch (error) {
      if (isBulwarkError(error, 'BWK_ERR_SETTINGS_INVALID'))
        return (error.details ?? []).map((p) => `${p.field}: ${p.message}`);
      throw error;
    }
    return [];
  }

  it('refuse endpoints nobody could open, and unknown names', () => {
    expect(problems({ BULWARK_PROTECT_ENDPOINTS: 'metrics,api-docs' })).toEqual([
      'BULWARK_PROTECT_ENDPOINTS: metrics, api-docs would be closed to everyone: set BULWARK_ADMIN_KEY',
    ]);
    expect(problems({ BULWARK_PROTECT_ENDPOINTS: 'api-docs', BULWARK_METRICS_TOKEN: METRICS_TOKEN })).toEqual(
      ['BULWARK_PROTECT_ENDPOINTS: api-docs would be closed to everyone: set BULWARK_ADMIN_KEY'],
    );
    expect(problems({ BULWARK_PROTECT_ENDPOINTS: 'health', BULWARK_METRICS_TOKEN: METRICS_TOKEN })).toEqual(
      [],
    );
    expect(problems({ BULWARK_PROTECT_ENDPOINTS: 'metrics,admin', BULWARK_ADMIN_KEY: ADMIN_KEY })[0]).toMatch(
      /^BULWARK_PROTECT_ENDPOINTS: "metrics,admin" is invalid: must be a comma-separated list of metrics, api-docs, health/,
    );
    expect(problems({ BULWARK_METRICS_TOKEN: 'short' })[0]).toMatch(/^BULWARK_METRICS_TOKEN: \(hidden value/);
  });

  it('mask the metrics token for display', () => {
    const shown = JSON.stringify(redactSettings(loadSettings({}, { BULWARK_METRICS_TOKEN: METRICS_TOKEN })));
    expect(shown).not.toContain(METRICS_TOKEN);
    expect(shown).toContain('"metricsToken":"[set]"');
  });
});

describe('browser error reports', () => {
  it('are rate limited per client network: the addresses of one IPv6 /64 share one budget', async () => {
    const server = await app();
    const report = (remoteAddress: string) =>
      server.inject({
        method: 'POST',
        url: '/errors/browser',
        remoteAddress,
        payload: { message: 'x is undefined', type: 'TypeError' },
      });
    // One host of a /64 may use any of its 2^64 addresses: a new address per report is still one client.
    const statuses: number[] = [];
    for (let i = 1; i <= 40; i++) statuses.push((await report(`2001:db8:7:1::${i.toString(16)}`)).statusCode);
    expect(statuses.filter((s) => s === 202)).toHaveLength(30);
    expect(statuses.slice(30)).toEqual(Array.from({ length: 10 }, () => 429));
    // Another /64 and an IPv4 client each have their own budget.
    expect((await report('2001:db8:7:2::1')).statusCode).toBe(202);
    expect((await report('192.0.2.7')).statusCode).toBe(202);
  });
});

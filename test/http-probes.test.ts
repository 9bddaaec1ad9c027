import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { bulwark as plugin, fastifyOptions } from '../src/http/plugin.js';
import { createBulwark } from '../src/runtime/create.js';
import { LogCapture } from './helpers/app.js';

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function app(level: string, logProbes?: boolean) {
  const logs = new LogCapture();
  const bulwark = await createBulwark({
    env: { LOG_LEVEL: level },
    store: { sqliteFile: ':memory:' },
    logDestination: logs,
    defaultMetrics: false,
    metricsHistory: false,
  });
  const server = Fastify(fastifyOptions(bulwark));
  await server.register(plugin, { bulwark, ...(logProbes === undefined ? {} : { logProbes }) });
  server.addHook('onClose', async () => bulwark.close());
  server.get('/orders', async () => []);
  // Like webPages' pages and assets: a route that asked to be quieter than info.
  server.get('/quiet', { logLevel: 'warn' }, async () => 'page');
  await server.ready();
  apps.push(server);
  return { server, logs };
}

const PROBES = ['/health', '/health/live', '/health/ready', '/metrics'];
const calls = async (server: FastifyInstance) => {
  for (const url of [...PROBES, '/quiet', '/orders']) await server.inject({ method: 'GET', url });
};
const lines = (logs: LogCapture) =>
  logs.requests().map((line) => `${String(line['level'])} ${String(line['route'])}`);

describe('probe requests in the log', () => {
  it('are not logged at info, nor routes quieter than info: only the app’s own requests are', async () => {
    const { server, logs } = await app('info');
    await calls(server);
    expect(lines(logs)).toEqual(['info /orders']);
  });

  it('are logged at debug, and at info with logProbes', async () => {
    const debug = await app('debug');
    await calls(debug.server);
    // The quieter route logs at its own level (warn): nothing for an answered request.
    expect(lines(debug.logs)).toEqual([...PROBES.map((route) => `debug ${route}`), 'info /orders']);
    const all = await app('info', true);
    await calls(all.server);
    expect(lines(all.logs)).toEqual([...PROBES, '/orders'].map((route) => `info ${route}`));
  });
});

import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach } from 'vitest';
import { bulwark as plugin, fastifyOptions } from '../../src/http/plugin.js';
import { createBulwark, type Bulwark, type BulwarkOptions } from '../../src/runtime/create.js';
import { LogCapture } from './app.js';

export const ADMIN_KEY = 'admin-key-for-tests-0123456789';
export const adminAuth = { authorization: `Bearer ${ADMIN_KEY}` };

const apps: FastifyInstance[] = [];
afterEach(async () => {
  // Closing the app closes its Bulwark (and any workers that would keep the process alive).
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

/** A ready app with the admin API (key {@link ADMIN_KEY}) on an in-memory store; closed after each test. */
export async function adminApp(
  options: BulwarkOptions = {},
  routes: (app: FastifyInstance) => void = () => undefined,
): Promise<{ app: FastifyInstance; instance: Bulwark }> {
  const instance = await createBulwark({
    env: {},
    store: { sqliteFile: ':memory:' },
    logDestination: new LogCapture(),
    defaultMetrics: false,
    adminKey: ADMIN_KEY,
    ...options,
  });
  const app = Fastify(fastifyOptions(instance));
  app.addHook('onClose', async () => instance.close());
  apps.push(app);
  await app.register(plugin, { bulwark: instance });
  routes(app);
  await app.ready();
  return { app, instance };
}

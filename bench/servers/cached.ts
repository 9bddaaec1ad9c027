// bench/failover.ts's server: Fastify + Bulwark with everything on and REDIS_URL set, one cached route.
// GET /items/:id goes through bulwark.cache.getOrSet (L1, then Redis behind the failover, then the
// factory). The factory is instant and in process, so what is measured is Bulwark's own cost, not an
// origin's. Every failover switch is reported to the parent over IPC with the app's own timestamp.
import Fastify from 'fastify';
import { bulwark, fastifyOptions } from '../../src/fastify.js';
import { createBulwark } from '../../src/index.js';

const instance = await createBulwark({ port: Number(process.env['PORT']), logLevel: 'info' });
const app = Fastify(fastifyOptions(instance));
await app.register(bulwark, { bulwark: instance });
app.get('/items/:id', async (request) => {
  const { id } = request.params as { id: string };
  return instance.cache.getOrSet(
    `item:${id}`,
    () => ({ id, name: `Item number ${id}`, priceCents: 1999, tags: ['catalogue', 'eu'] }),
    { ttl: 60_000 },
  );
});
await app.listen({ port: instance.settings.port, host: '127.0.0.1' });
instance.dependencies['redis']?.onChange((change) => {
  process.send?.({ type: 'mode', to: change.to, reason: change.reason, at: change.at });
});
process.send?.({ type: 'ready', mode: instance.dependencies['redis']?.mode });
process.once('SIGTERM', () => process.exit(0));

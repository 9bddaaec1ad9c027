// bench/failover.ts's server: Fastify + Bulwark with everything on and REDIS_URL set, one route with
// Redis three times in its path. GET /items/:id passes a rate limit on Redis (the plugin's
// `rateLimit`, a policy allowing far more than the load sends: every request pays for the check,
// none is refused), adds a small job to a queue (`bulwark.queues`: BullMQ on Redis behind the
// failover, the embedded queue as its outage spool; no worker, the jobs wait) and answers through
// bulwark.cache.getOrSet (L1, then Redis behind the failover, then the factory). The factory is
// instant and in process, so what is measured is Bulwark's own cost, not an origin's. Every
// failover switch is reported to the parent over IPC with the app's own timestamp, and its garbage
// collections every 250 ms (bench/servers/gc-report.ts).
import Fastify from 'fastify';
import { bulwark, fastifyOptions } from '../../src/fastify.js';
import { createBulwark } from '../../src/index.js';
import { reportGc } from './gc-report.js';

const instance = await createBulwark({
  port: Number(process.env['PORT']),
  logLevel: 'info',
  rateLimitPolicies: { policies: [{ name: 'default', limit: 1_000_000_000, windowMs: 60_000 }] },
});
const app = Fastify(fastifyOptions(instance));
await app.register(bulwark, { bulwark: instance, rateLimit: { default: { by: 'ip' as const } } });
app.get('/items/:id', async (request) => {
  const { id } = request.params as { id: string };
  await instance.queues.add('item-viewed', { id });
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
reportGc();
process.send?.({ type: 'ready', mode: instance.dependencies['redis']?.mode });
process.once('SIGTERM', () => process.exit(0));

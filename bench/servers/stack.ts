// Peer for bench/http.ts: the Fastify stack a team assembles itself for the same guarantees, each
// piece configured as its README shows: pino request logging at info (Fastify's default two lines
// per request), @fastify/rate-limit on every route (a limit far above the load, so every request is
// checked and none refused), a prom-client histogram of request duration by route and status (the
// usual onResponse hook) served at /metrics, and @fastify/under-pressure guarding
// event-loop delay, heap and RSS. The same route as the other servers.
import underPressure from '@fastify/under-pressure';
import rateLimit from '@fastify/rate-limit';
import Fastify from 'fastify';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

const app = Fastify({ logger: { level: 'info' } });
const registry = new Registry();
collectDefaultMetrics({ register: registry });
const duration = new Histogram({
  name: 'http_request_duration_seconds',
  help: 'Request duration by route and status',
  labelNames: ['method', 'route', 'status_code'],
  registers: [registry],
});
app.addHook('onResponse', async (request, reply) => {
  duration.observe(
    { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: reply.statusCode },
    reply.elapsedTime / 1000,
  );
});
// Its README's example also sets maxEventLoopUtilization: 0.98, but a closed-loop benchmark keeps the
// loop saturated by design, so that would turn nearly every answer into a 503 and measure refusals:
// left out, like the memory thresholds this process passes at idle (the overload benchmark measures
// under-pressure as a shedder).
await app.register(underPressure, {
  maxEventLoopDelay: 1000,
  maxHeapUsedBytes: 1_000_000_000,
  maxRssBytes: 1_500_000_000,
});
await app.register(rateLimit, { max: 1_000_000_000, timeWindow: '1 minute' });
app.get('/metrics', { config: { rateLimit: false } }, async (_request, reply) => {
  reply.type(registry.contentType);
  return registry.metrics();
});
app.get('/hello', async () => ({ hello: 'world' }));
await app.listen({ port: Number(process.env['PORT']), host: '127.0.0.1' });
process.send?.('ready');
process.once('SIGTERM', () => process.exit(0)); // lets --cpu-prof write its profile

// bench/http.ts's subject: Fastify + Bulwark as `npm start`'s app has it on a typical route:
// request ids and one log line per request, metrics, the coded error handlers, a rate limit on
// every request (in memory, or on Redis when BENCH_REDIS_URL is set), a flag evaluated in the
// handler (a rule and a 50 % rollout, so the evaluation does real work), error tracking armed,
// the load-shedding hook, and the metrics history sampling every 10 s (rounds run ≥ 20 s). The
// rate limit allows far more than the load sends: every request pays for the check, none is refused.
// BENCH_LAYERS (comma-separated, default all) keeps only some layers, for bench/cost.ts's per-part
// table: log (the request line), background (metrics history, leak sampling), ratelimit, flag,
// protection. Without a layer the plugin still gives request ids, metrics and the error handlers.
import Fastify from 'fastify';
import { bulwark, fastifyOptions } from '../../src/fastify.js';
import { createBulwark } from '../../src/index.js';

const LAYERS = ['log', 'background', 'ratelimit', 'flag', 'protection'] as const;
const chosen = (process.env['BENCH_LAYERS'] ?? LAYERS.join(',')).split(',').filter((l) => l !== '');
const unknown = chosen.filter((l) => !(LAYERS as readonly string[]).includes(l));
if (unknown.length > 0) throw new Error(`BENCH_LAYERS: unknown layer ${unknown.join(', ')}`);
const on = (layer: (typeof LAYERS)[number]) => chosen.includes(layer);
const redisUrl = process.env['BENCH_REDIS_URL'];
const instance = await createBulwark({
  port: Number(process.env['PORT']),
  logLevel: on('log') ? 'info' : 'warn',
  ...(redisUrl === undefined ? {} : { redisUrl }),
  ...(on('background') ? {} : { metricsHistory: false as const, leaks: false as const }),
  rateLimitPolicies: { policies: [{ name: 'default', limit: 1_000_000_000, windowMs: 60_000 }] },
});
await instance.flags.set(
  {
    key: 'friendly-greeting',
    type: 'boolean',
    variants: { on: true, off: false },
    defaultVariant: 'off',
    enabled: true,
    rules: [
      {
        name: 'staff',
        conditions: [{ attribute: 'email', op: 'endsWith', values: ['@acme.test'] }],
        variant: 'on',
      },
    ],
    rollout: { variant: 'on', otherwise: 'off', percentage: 50 },
  },
  { actor: 'bench' },
);
const app = Fastify(fastifyOptions(instance));
await app.register(bulwark, {
  bulwark: instance,
  ...(on('ratelimit') ? { rateLimit: { default: { by: 'ip' as const } } } : {}),
  ...(on('flag') ? { flags: {} } : {}),
  protection: on('protection'),
});
app.get('/hello', async (request) => ({
  hello: on('flag') && request.flag('friendly-greeting', false) ? 'friend' : 'world',
}));
await app.listen({ port: instance.settings.port, host: '127.0.0.1' });
process.send?.('ready');
process.once('SIGTERM', () => process.exit(0)); // lets --cpu-prof write its profile

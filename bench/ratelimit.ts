// Rate-limit check latency: Bulwark's limiter vs rate-limiter-flexible alone, in memory and on a
// real local redis-server, same run, alternating rounds; p50/p99 per check (sequential calls over
// 1 000 keys, each timed with process.hrtime.bigint()), medians over rounds.
//   npm run bench:ratelimit        (defaults: ROUNDS=5 CHECKS=20000; writes bench/results/ratelimit.json;
//                                   a run with ROUNDS or CHECKS set writes no result)
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import { createRateLimiter, type RateLimiter } from '../src/ratelimit/index.js';
import { connectRedis } from '../src/redis/connection.js';
import { createLogger } from '../src/logging/index.js';
import { startRedis } from '../test/helpers/redis.js';
import { describeMachine, median, knob, writeResult } from './lib.js';

const rounds = knob('ROUNDS', 5, 1);
const checks = knob('CHECKS', 20_000, 500);
const policy = { name: 'bench', limit: 1_000_000, windowMs: 60_000 };

type Check = (key: string) => Promise<unknown>;

async function measure(check: Check, n: number): Promise<{ p50: number; p99: number }> {
  const samples = new Float64Array(n);
  for (let i = 0; i < n; i += 1) {
    const t0 = process.hrtime.bigint();
    await check(`k${i % 1000}`);
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  samples.sort();
  return { p50: samples[Math.floor(n * 0.5)] ?? 0, p99: samples[Math.floor(n * 0.99)] ?? 0 };
}

const server = await startRedis();
const logger = createLogger({ level: 'silent' });
const dependency = await connectRedis(server.url, logger);
const rawClient = new Redis(server.url, { enableOfflineQueue: false });
await new Promise((resolve) => rawClient.once('ready', resolve));

const bulwarkMemory: RateLimiter = createRateLimiter({ policies: [policy] });
const bulwarkRedis: RateLimiter = createRateLimiter({ policies: [policy], redis: dependency });
const peerMemory = new RateLimiterMemory({ points: policy.limit, duration: 60 });
const peerRedis = new RateLimiterRedis({
  storeClient: rawClient,
  points: policy.limit,
  duration: 60,
  keyPrefix: 'peer',
});

const cases: Record<string, Check> = {
  'memory: Bulwark': (key) => bulwarkMemory.consume(key),
  'memory: rate-limiter-flexible': (key) => peerMemory.consume(key),
  'redis: Bulwark': (key) => bulwarkRedis.consume(key),
  'redis: rate-limiter-flexible': (key) => peerRedis.consume(key),
};

console.log(describeMachine(['rate-limiter-flexible', 'ioredis']));
console.log(
  `${checks} sequential checks per round over 1000 keys, ${rounds} rounds alternating; µs per check\n`,
);
const results = new Map<string, { p50: number[]; p99: number[] }>(
  Object.keys(cases).map((n) => [n, { p50: [], p99: [] }]),
);
for (const check of Object.values(cases)) await measure(check, 2000); // warm-up
for (let round = 1; round <= rounds; round += 1) {
  const names = Object.keys(cases);
  if (round % 2 === 0) names.reverse();
  for (const name of names) {
    const r = await measure(cases[name]!, checks);
    results.get(name)!.p50.push(r.p50);
    results.get(name)!.p99.push(r.p99);
  }
}
const md = [
  `${checks.toLocaleString('en')} sequential checks per round over 1000 keys (each timed), ${rounds} rounds ` +
    `alternating; µs per check, medians over rounds. Redis: a local redis-server on the same machine.`,
  '',
  '| limiter | median p50 (µs) | median p99 (µs) | target p99 |',
  '|---|---|---|---|',
];
for (const [name, r] of results) {
  const target = name.startsWith('memory') ? '≤ 50 µs' : '≤ 1000 µs';
  md.push(
    `| ${name} | ${median(r.p50).toFixed(1)} | ${median(r.p99).toFixed(1)} | ${name.includes('Bulwark') ? target : 'peer'} |`,
  );
}
const markdown = md.join('\n');
console.log(markdown);
writeResult(
  {
    benchmark: 'ratelimit',
    packages: ['rate-limiter-flexible', 'ioredis'],
    settings: { rounds, checks, keys: 1000, policy },
    markdown,
    data: Object.fromEntries(results),
  },
  ['ROUNDS', 'CHECKS'],
);
await bulwarkMemory.close();
await bulwarkRedis.close();
dependency.close();
rawClient.disconnect();
await server.stop();

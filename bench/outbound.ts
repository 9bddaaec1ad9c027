// Cost of bulwark.http's guard (kill switch, throttle, breaker, deadline, retry budget, metrics)
// over the same undici Pool used bare, against one real upstream process on loopback
// (bench/servers/outbound-upstream.ts), in the same run: CONCURRENCY requests in flight for
// DURATION s per side, rounds alternating which side goes first. Also protect() around a function
// that resolves at once against calling it directly (the guard's own cost per call).
//   npm run bench:outbound     (defaults: ROUNDS=3 DURATION=5 CONCURRENCY=32, CALLS=200000 protect()
//                               calls; writes bench/results/outbound.json; a run with any of them set
//                               writes no result)
import { performance } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { Pool } from 'undici';
import { Outbound } from '../src/outbound/index.js';
import { freePort } from '../test/helpers/process.js';
import { describeMachine, median, startServer, stopServer, knob, writeResult } from './lib.js';

const rounds = knob('ROUNDS', 3, 1);
const duration = knob('DURATION', 5, 1);
const concurrency = knob('CONCURRENCY', 32, 4);

/** Requests per second of `call` kept `concurrency` deep for `seconds`. */
async function rate(call: () => Promise<unknown>, seconds: number): Promise<number> {
  const until = performance.now() + seconds * 1000;
  let done = 0;
  const worker = async () => {
    while (performance.now() < until) {
      await call();
      done += 1;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return done / ((performance.now() - started) / 1000);
}

console.log(describeMachine(['undici', 'cockatiel', 'prom-client']));
console.log(`${concurrency} requests in flight, ${duration} s per side, ${rounds} rounds alternating\n`);
const port = await freePort();
const upstream = await startServer('bench/servers/outbound-upstream.ts', { PORT: String(port) });
const origin = `http://127.0.0.1:${port}`;
const bare = new Pool(origin, { connections: 16 });
const outbound = await Outbound.create({ upstreams: { api: { origin, connections: 16 } } }, new Registry());
const sides = {
  'undici Pool': async () => {
    const answer = await bare.request({ path: '/', method: 'GET' });
    await answer.body.arrayBuffer();
  },
  'bulwark.http': () => outbound.request('api', { path: '/' }),
} as const;
type Side = keyof typeof sides;
const results: Record<Side, number[]> = { 'undici Pool': [], 'bulwark.http': [] };
try {
  for (const call of Object.values(sides)) await rate(call, 1); // warm-up
  for (let round = 1; round <= rounds; round += 1) {
    const order = Object.keys(sides) as Side[];
    if (round % 2 === 0) order.reverse();
    for (const side of order) results[side].push(await rate(sides[side], duration));
  }
} finally {
  await bare.close();
  await outbound.close();
  await stopServer(upstream);
}
const bareRate = median(results['undici Pool']);
const guardedRate = median(results['bulwark.http']);

// protect() around a function that resolves at once: the guard's cost per call, in process.
const direct = () => Promise.resolve(1);
const n = knob('CALLS', 200_000, 5000);
const timed = async (call: () => Promise<unknown>) => {
  const started = performance.now();
  for (let i = 0; i < n; i += 1) await call();
  return (performance.now() - started) / n;
};
await timed(() => outbound.protect('fn', direct)); // warm-up
const directMs = await timed(direct);
const protectedMs = await timed(() => outbound.protect('fn', direct));
const markdown = [
  `${concurrency} requests in flight for ${duration} s per side against one upstream process on loopback, ` +
    `${rounds} rounds alternating which side goes first; medians.`,
  '',
  '| client | median req/s | rounds (req/s) |',
  '|---|---|---|',
  ...(Object.keys(sides) as Side[]).map(
    (side) =>
      `| ${side} | ${median(results[side]).toFixed(0)} | ${results[side].map((r) => r.toFixed(0)).join(', ')} |`,
  ),
  '',
  `Ratio bulwark.http / undici Pool: ${(guardedRate / bareRate).toFixed(3)}.`,
  '',
  `protect() around a function that resolves at once (${n.toLocaleString('en')} calls): ` +
    `${(protectedMs * 1000).toFixed(2)} µs per call, a direct call ${(directMs * 1000).toFixed(2)} µs: ` +
    `${((protectedMs - directMs) * 1000).toFixed(2)} µs of guard per call.`,
].join('\n');
console.log(markdown);
writeResult(
  {
    benchmark: 'outbound',
    packages: ['undici', 'cockatiel', 'prom-client'],
    settings: { rounds, duration, concurrency, protectCalls: n },
    markdown,
    data: { reqPerSec: results, protectUsPerCall: protectedMs * 1000, directUsPerCall: directMs * 1000 },
  },
  ['ROUNDS', 'DURATION', 'CONCURRENCY', 'CALLS'],
);

// What each layer of Bulwark's protected path costs: CPU µs per request of the server process
// (user + system, from /proc/<pid>/stat) over a fixed number of requests, building the stack up
// one layer at a time from bare Fastify to what bench/http.ts measures. CPU time per request,
// unlike req/s, does not depend on how the 2 cores are shared with the load generator.
//   npm run bench:cost            (3 rounds rotating, 200 000 requests per server per round)
//   ROUNDS=5 REQUESTS=300000 npm run bench:cost
import autocannon from 'autocannon';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cpuSeconds, describeMachine, knob, median, startServer, stopServer, writeResult } from './lib.js';

const rounds = knob('ROUNDS', 3, 1);
const requests = knob('REQUESTS', 200_000, 5_000);
const connections = 100;
const dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-cost-'));
const PACKAGES = ['fastify', 'pino', 'prom-client', 'autocannon'];

/** Each step adds one layer to the one before; the last is bench/http.ts's Bulwark server. */
const STEPS: { name: string; what: string; entry: string; layers?: string }[] = [
  { name: 'bare', what: 'bare Fastify', entry: 'bench/servers/bare.ts' },
  {
    name: 'plugin',
    what: 'the Bulwark plugin: request ids, metrics, error handlers, health (request lines off)',
    entry: 'bench/servers/bulwark.ts',
    layers: '',
  },
  { name: 'log', what: '+ one request log line', entry: 'bench/servers/bulwark.ts', layers: 'log' },
  {
    name: 'background',
    what: '+ metrics history and leak sampling',
    entry: 'bench/servers/bulwark.ts',
    layers: 'log,background',
  },
  {
    name: 'ratelimit',
    what: '+ a rate limit (memory)',
    entry: 'bench/servers/bulwark.ts',
    layers: 'log,background,ratelimit',
  },
  {
    name: 'flag',
    what: '+ a flag evaluated in the handler',
    entry: 'bench/servers/bulwark.ts',
    layers: 'log,background,ratelimit,flag',
  },
  {
    name: 'protection',
    what: '+ the load-shedding hook (everything: bench/http.ts)',
    entry: 'bench/servers/bulwark.ts',
    layers: 'log,background,ratelimit,flag,protection',
  },
];

async function measure(step: (typeof STEPS)[number], port: number): Promise<number> {
  const child = await startServer(step.entry, {
    PORT: String(port),
    BULWARK_DATA_DIR: mkdtempSync(path.join(dataDir, `${step.name}-`)),
    ...(step.layers === undefined ? {} : { BENCH_LAYERS: step.layers }),
  });
  try {
    const url = `http://127.0.0.1:${port}/hello`;
    await autocannon({ url, connections, amount: Math.max(20_000, requests / 4) }); // JIT, connections
    const before = cpuSeconds(child.pid!);
    const result = await autocannon({ url, connections, amount: requests });
    const used = cpuSeconds(child.pid!) - before;
    const failed = result.errors + result.timeouts + result.non2xx;
    if (failed > 0) throw new Error(`${step.name}: ${failed} requests failed`);
    return (used / requests) * 1e6;
  } finally {
    await stopServer(child);
  }
}

console.log(describeMachine(PACKAGES));
console.log(
  `${requests} requests per server per round (autocannon -c ${connections}), ${rounds} rounds rotating\n`,
);
const runs = new Map<string, number[]>(STEPS.map((s) => [s.name, []]));
for (let round = 0; round < rounds; round += 1) {
  const order = STEPS.map((_s, i) => STEPS[(i + round) % STEPS.length]!);
  for (const step of order) {
    const us = await measure(step, 3940);
    runs.get(step.name)!.push(us);
    console.log(`round ${round + 1} ${step.name.padEnd(11)} ${us.toFixed(2)} CPU µs/request`);
  }
}
rmSync(dataDir, { recursive: true, force: true });

const lines = [
  `CPU µs per request of the server process (user + system, from \`/proc/<pid>/stat\`) over ` +
    `${requests.toLocaleString('en')} requests (autocannon \`-c ${connections}\`, after a warm-up), ` +
    `${rounds} rounds rotating; medians, spread min–max. Each row adds one layer to the row above.`,
  '',
  '| server | CPU µs/request | spread | this layer adds | × bare |',
  '|---|---|---|---|---|',
];
const bare = median(runs.get('bare')!);
let previous = bare;
for (const step of STEPS) {
  const values = runs.get(step.name)!;
  const us = median(values);
  lines.push(
    `| ${step.what} | ${us.toFixed(2)} | ${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)} | ` +
      `${step.name === 'bare' ? '—' : `${us - previous >= 0 ? '+' : ''}${(us - previous).toFixed(2)}`} | ${(us / bare).toFixed(2)} |`,
  );
  previous = us;
}
const markdown = lines.join('\n');
console.log(`\n${markdown}`);
writeResult(
  {
    benchmark: 'cost',
    packages: PACKAGES,
    settings: { rounds, requests, connections },
    markdown,
    data: Object.fromEntries(runs),
  },
  ['ROUNDS', 'REQUESTS'],
);

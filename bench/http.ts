// HTTP overhead of Bulwark: bare Fastify vs Fastify + Bulwark (everything on), same route, same run,
// alternating A/B rounds; prints per-round figures, medians and the ratio.
//   npm run bench:http            (defaults: 5 rounds × 5 s, 100 connections)
//   ROUNDS=3 DURATION=10 CONNECTIONS=100 npm run bench:http
import autocannon from 'autocannon';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeMachine, median, startServer, stopServer } from './lib.js';

const rounds = Number(process.env['ROUNDS'] ?? 5);
const duration = Number(process.env['DURATION'] ?? 5);
const connections = Number(process.env['CONNECTIONS'] ?? 100);
const dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-'));

interface Sample {
  rps: number;
  p99: number;
  errors: number;
}

async function measure(entry: string, port: number): Promise<Sample> {
  const server = await startServer(entry, { PORT: String(port), BULWARK_DATA_DIR: dataDir });
  try {
    const url = `http://127.0.0.1:${port}/hello`;
    await autocannon({ url, connections, duration: 1 }); // warm-up: JIT and connection set-up
    const result = await autocannon({ url, connections, duration });
    return { rps: result.requests.average, p99: result.latency.p99, errors: result.errors + result.non2xx };
  } finally {
    await stopServer(server);
  }
}

console.log(describeMachine(['fastify', 'pino', 'prom-client', 'autocannon']));
console.log(`autocannon -c ${connections} -d ${duration}, ${rounds} rounds alternating\n`);
const bare: Sample[] = [];
const full: Sample[] = [];
for (let round = 1; round <= rounds; round += 1) {
  // Alternate which goes first so drift on a noisy machine hits both sides alike.
  const order = round % 2 === 1 ? (['bare', 'full'] as const) : (['full', 'bare'] as const);
  for (const which of order) {
    const sample = await measure(
      which === 'bare' ? 'bench/servers/bare.ts' : 'bench/servers/bulwark.ts',
      which === 'bare' ? 3901 : 3902,
    );
    (which === 'bare' ? bare : full).push(sample);
    console.log(
      `round ${round} ${which.padEnd(4)} ${Math.round(sample.rps).toString().padStart(7)} req/s  p99 ${sample.p99} ms  errors ${sample.errors}`,
    );
  }
}
const bareRps = median(bare.map((s) => s.rps));
const fullRps = median(full.map((s) => s.rps));
const bareP99 = median(bare.map((s) => s.p99));
const fullP99 = median(full.map((s) => s.p99));
console.log('\n| server | median req/s | median p99 (ms) |');
console.log('|---|---|---|');
console.log(`| bare Fastify | ${Math.round(bareRps)} | ${bareP99} |`);
console.log(`| Fastify + Bulwark | ${Math.round(fullRps)} | ${fullP99} |`);
console.log(
  `\nthroughput ratio ${(fullRps / bareRps).toFixed(3)}× (target ≥ 0.80×); p99 ratio ${(fullP99 / Math.max(bareP99, 0.001)).toFixed(2)}× (target ≤ 1.25×)`,
);
rmSync(dataDir, { recursive: true, force: true });

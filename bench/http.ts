// HTTP overhead of Bulwark's protected path against bare Fastify and the Fastify stack a team would
// assemble itself, same route, same run, rotating which server goes first in each round.
//   npm run bench:http                 (5 rounds × 20 s closed + 10 s open per server, 100 connections)
//   ROUNDS=3 DURATION=20 CONNECTIONS=100 OPEN_S=10 npm run bench:http
// Closed model: autocannon keeps CONNECTIONS requests in flight; every request's time comes from
// autocannon's own hrtime pair (µs resolution, not its whole-ms histogram); a non-2xx answer is a
// failure. Open model: requests sent on a fixed schedule at 70 % of bare Fastify's closed-model
// median, latency counted from each request's scheduled time, so a slow server's queue shows
// (no coordinated omission).
import autocannon from 'autocannon';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startRedis } from '../test/helpers/redis.js';
import { startCanary } from './canary.js';
import { openLoad } from './open-load.js';
import {
  describeMachine,
  knob,
  median,
  Latencies,
  percentile,
  sleep,
  startServer,
  stopServer,
  writeResult,
} from './lib.js';

const rounds = knob('ROUNDS', 5, 1);
const duration = knob('DURATION', 20, 1);
const connections = knob('CONNECTIONS', 100, 10);
const openSeconds = knob('OPEN_S', 10, 1);
const OPEN_SHARE = 0.7;
const WARM_UP_S = 2;
const dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-http-'));
const PACKAGES = [
  'fastify',
  'pino',
  'prom-client',
  '@fastify/rate-limit',
  '@fastify/under-pressure',
  'autocannon',
  'undici',
];

interface Server {
  name: string;
  label: string;
  entry: string;
  env?: Record<string, string>;
}

const redis = await startRedis();
const canary = await startCanary();
const SERVERS: Server[] = [
  { name: 'bare', label: 'bare Fastify', entry: 'bench/servers/bare.ts' },
  {
    name: 'stack',
    label: 'usual stack: pino, @fastify/rate-limit, prom-client, @fastify/under-pressure',
    entry: 'bench/servers/stack.ts',
  },
  { name: 'bulwark', label: 'Fastify + Bulwark, rate limit in memory', entry: 'bench/servers/bulwark.ts' },
  {
    name: 'bulwark-redis',
    label: 'Fastify + Bulwark, rate limit on Redis',
    entry: 'bench/servers/bulwark.ts',
    env: { BENCH_REDIS_URL: redis.url },
  },
];

interface Timings {
  /** 2xx answers per second over the measured window (refusals and errors are not throughput) */
  rps: number;
  /** µs */
  p50: number;
  p99: number;
  max: number;
  requests: number;
  /** non-2xx answers, connection errors and timeouts */
  failed: number;
  /** The failures by kind: `status <code>`, `error`, `timeout` (closed model only). */
  why?: Record<string, number>;
  /** The host canary's median µs per unit of work over the run (closed model only; bench/canary.ts). */
  host?: number;
}

/** Latency figures from per-request times in ms, reported in µs. */
function summarise(times: Float64Array, count: number, seconds: number, failed: number): Timings {
  const view = times.subarray(0, count);
  return {
    rps: Math.max(0, count - failed) / seconds,
    p50: percentile(view, 50) * 1000,
    p99: percentile(view, 99) * 1000,
    max: percentile(view, 100) * 1000,
    requests: count,
    failed,
  };
}

/** Closed model: `connections` in flight for `seconds`, each request timed by autocannon's hrtime. */
async function closed(port: number, seconds: number): Promise<Timings> {
  const latencies = new Latencies();
  const from = performance.timeOrigin + performance.now();
  let failed = 0;
  const why: Record<string, number> = {};
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const run = autocannon(
      { url: `http://127.0.0.1:${port}/hello`, connections, duration: seconds },
      (error, r) => (error === null || error === undefined ? resolve(r) : reject(error as Error)),
    );
    run.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      latencies.push(ms);
      if (status >= 200 && status <= 299) return;
      failed += 1;
      why[`status ${status}`] = (why[`status ${status}`] ?? 0) + 1;
    });
  });
  if (result.errors > 0) why['error'] = result.errors;
  if (result.timeouts > 0) why['timeout'] = result.timeouts;
  const timings = {
    ...summarise(latencies.values, latencies.count, seconds, failed + result.errors + result.timeouts),
    host: canary.median(from, performance.timeOrigin + performance.now()),
  };
  return timings.failed > 0 ? { ...timings, why } : timings;
}

/** Open model: `rate` requests a second on schedule; each latency from its scheduled time. */
async function open(port: number, rate: number, seconds: number): Promise<Timings> {
  const { times, failed } = await openLoad({ port, path: '/hello', rate, seconds, connections });
  const answered = times.filter((t) => !Number.isNaN(t));
  return summarise(answered, answered.length, seconds, failed);
}

async function withServer<T>(server: Server, port: number, work: () => Promise<T>): Promise<T> {
  const child = await startServer(server.entry, {
    PORT: String(port),
    BULWARK_DATA_DIR: mkdtempSync(path.join(dataDir, `${server.name}-`)),
    ...server.env,
  });
  try {
    await autocannon({ url: `http://127.0.0.1:${port}/hello`, connections, duration: WARM_UP_S }); // JIT, connections
    return await work();
  } finally {
    await stopServer(child);
  }
}

/** The runs' failures: their number, and by kind when there are any (`27 (status 503 × 27)`). */
function failures(runs: Timings[]): string {
  const total = runs.reduce((n, t) => n + t.failed, 0);
  const kinds = new Map<string, number>();
  for (const t of runs)
    for (const [kind, n] of Object.entries(t.why ?? {})) kinds.set(kind, (kinds.get(kind) ?? 0) + n);
  return kinds.size === 0
    ? String(total)
    : `${total} (${[...kinds].map(([k, n]) => `${k} × ${n}`).join(', ')})`;
}

const fmtUs = (us: number) => (us >= 10_000 ? `${(us / 1000).toFixed(1)} ms` : `${Math.round(us)} µs`);
const spread = (values: number[]) =>
  `${Math.round(Math.min(...values)).toLocaleString('en')}–${Math.round(Math.max(...values)).toLocaleString('en')}`;

console.log(describeMachine(PACKAGES));
console.log(
  `closed: autocannon -c ${connections} -d ${duration} after a ${WARM_UP_S} s warm-up, ${rounds} rounds rotating; ` +
    `open: ${openSeconds} s at ${OPEN_SHARE * 100} % of bare Fastify's median\n`,
);
const closedRuns = new Map<string, Timings[]>(SERVERS.map((s) => [s.name, []]));
for (let round = 0; round < rounds; round += 1) {
  // Rotate who goes first so drift on a noisy machine lands on every server alike.
  const order = SERVERS.map((_s, i) => SERVERS[(i + round) % SERVERS.length]!);
  for (const [i, server] of order.entries()) {
    const t = await withServer(server, 3910 + i, () => closed(3910 + i, duration));
    closedRuns.get(server.name)!.push(t);
    console.log(
      `round ${round + 1} ${server.name.padEnd(13)} ${Math.round(t.rps).toString().padStart(7)} req/s  ` +
        `p50 ${fmtUs(t.p50)}  p99 ${fmtUs(t.p99)}  max ${fmtUs(t.max)}  failed ${failures([t])}`,
    );
  }
}
const med = (name: string, pick: (t: Timings) => number, runs = closedRuns) =>
  median(runs.get(name)!.map(pick));
const bareRps = med('bare', (t) => t.rps);
const bareP99 = med('bare', (t) => t.p99);
const rate = Math.round(bareRps * OPEN_SHARE);
console.log(`\nopen model at ${rate} req/s (${OPEN_SHARE * 100} % of bare Fastify's ${Math.round(bareRps)})`);
const openRuns = new Map<string, Timings[]>(SERVERS.map((s) => [s.name, []]));
const openRounds = Math.max(1, Math.min(rounds, 3));
for (let round = 0; round < openRounds; round += 1) {
  const order = SERVERS.map((_s, i) => SERVERS[(i + round) % SERVERS.length]!);
  for (const [i, server] of order.entries()) {
    const t = await withServer(server, 3920 + i, () => open(3920 + i, rate, openSeconds));
    openRuns.get(server.name)!.push(t);
    console.log(
      `open ${round + 1} ${server.name.padEnd(13)} sent ${t.requests}  p50 ${fmtUs(t.p50)}  p99 ${fmtUs(t.p99)}  ` +
        `max ${fmtUs(t.max)}  failed ${t.failed}`,
    );
  }
  await sleep(100);
}
await canary.stop();
await redis.stop();
rmSync(dataDir, { recursive: true, force: true });

const lines: string[] = [];
lines.push(
  `Closed model: autocannon \`-c ${connections}\` for ${duration} s per server after a ${WARM_UP_S} s warm-up, ` +
    `${rounds} rounds rotating the order; medians over rounds, the req/s spread is min–max. ` +
    'Latency from per-request hrtime pairs; a non-2xx answer, a connection error or a timeout counts as failed, and the failed column says which (by status for an answer).',
  '',
  '| server | 2xx/s (median) | spread | × bare | p50 | p99 | × bare p99 | max | failed |',
  '|---|---|---|---|---|---|---|---|---|',
);
for (const s of SERVERS) {
  const runs = closedRuns.get(s.name)!;
  const rps = med(s.name, (t) => t.rps);
  const p99 = med(s.name, (t) => t.p99);
  lines.push(
    `| ${s.label} | ${Math.round(rps).toLocaleString('en')} | ${spread(runs.map((t) => t.rps))} | ` +
      `${(rps / bareRps).toFixed(2)} | ${fmtUs(med(s.name, (t) => t.p50))} | ${fmtUs(p99)} | ` +
      `${(p99 / bareP99).toFixed(2)} | ${fmtUs(med(s.name, (t) => t.max))} | ${failures(runs)} |`,
  );
}
lines.push(
  '',
  `Open model: ${rate.toLocaleString('en')} req/s (${OPEN_SHARE * 100} % of bare Fastify's median) for ` +
    `${openSeconds} s per server, ${openRounds} rounds rotating; latency from each request's scheduled ` +
    'time (the generator, on raw sockets, releases due requests in ~1 ms timer ticks, alike for every server).',
  '',
  '| server | p50 | p99 | max | failed |',
  '|---|---|---|---|---|',
);
for (const s of SERVERS) {
  lines.push(
    `| ${s.label} | ${fmtUs(med(s.name, (t) => t.p50, openRuns))} | ${fmtUs(med(s.name, (t) => t.p99, openRuns))} | ` +
      `${fmtUs(med(s.name, (t) => t.max, openRuns))} | ${openRuns.get(s.name)!.reduce((n, t) => n + t.failed, 0)} |`,
  );
}
// The host moves under a round: bare Fastify's rounds have spread 2× within a run on these shared
// hosts. Each run's canary shows how fast the host ran a fixed piece of work meanwhile; it does not
// see how the two cores were shared between the server and the load generator.
const closedOf = (name: string, round: number) => closedRuns.get(name)![round]!;
lines.push(
  '',
  "Per round of the closed model: each server's 2xx/s, with the host canary's median over its run in" +
    ' brackets (bench/canary.ts: a fixed unit of work timed every 50 ms in a process of its own; more µs, a' +
    ' slower host), and Bulwark in memory ÷ bare Fastify of the same round.',
  '',
  `| round | ${SERVERS.map((s) => s.name).join(' | ')} | in memory ÷ bare |`,
  `|---|${SERVERS.map(() => '---|').join('')}---|`,
  ...Array.from({ length: rounds }, (_, round) => {
    const cells = SERVERS.map((s) => {
      const t = closedOf(s.name, round);
      const host = t.host === undefined ? 'n/a' : `${Math.round(t.host)} µs`;
      return `${Math.round(t.rps).toLocaleString('en')} (${host})`;
    });
    const ratio = closedOf('bulwark', round).rps / closedOf('bare', round).rps;
    return `| ${round + 1} | ${cells.join(' | ')} | ${ratio.toFixed(2)} |`;
  }),
);
const markdown = lines.join('\n');
console.log(`\n${markdown}`);
writeResult(
  {
    benchmark: 'http',
    packages: PACKAGES,
    settings: { rounds, durationS: duration, connections, openSeconds, openRate: rate, warmUpS: WARM_UP_S },
    markdown,
    data: { closed: Object.fromEntries(closedRuns), open: Object.fromEntries(openRuns) },
  },
  ['ROUNDS', 'DURATION', 'CONNECTIONS', 'OPEN_S'],
);

// Overload: the same app with no protection, with @fastify/under-pressure, and with Bulwark's load
// shedding, under an open-model load (requests sent on a fixed schedule, whatever the answers: as
// users arrive) ramped to 1×, 2×, 3× and 5× the app's capacity, 20% of it critical, 40% default,
// 40% sheddable. Latency is measured from each request's scheduled time (no coordinated omission);
// a request not answered within 5 s of its scheduled time counts as failed (its client gave up),
// whatever came later.
//   npm run bench:overload                     (3 rounds of 8 s phases: about 12 minutes)
//   ROUNDS=1 PHASE_S=10 npm run bench:overload (no result written: sizes changed)
//   PHASES=0.2,3 MODES=bulwark npm run bench:overload  (a spike from light load to 3×; no result written)
//   MODES=bulwark PROTECTION='{"limit":{"queueHigh":4}}' npm run bench:overload   (trying settings)
import autocannon from 'autocannon';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  describeMachine,
  percentile,
  sleep,
  startServer,
  stopServer,
  knob,
  SMOKE,
  writeResult,
} from './lib.js';
import { overloadChart } from './overload-chart.js';
import { overloadMarkdown } from './overload-report.js';

const rounds = knob('ROUNDS', 3, 1);
const phaseMs = knob('PHASE_S', 8, 1) * 1000;
const TIMEOUT_MS = 5000;
const ALL_MODES = ['none', 'under-pressure', 'bulwark'] as const;
type Mode = (typeof ALL_MODES)[number];
// MODES=bulwark (comma-separated) runs only those: for trying settings, not for the figures.
const MODES = ALL_MODES.filter((m) => (process.env['MODES'] ?? ALL_MODES.join(',')).split(',').includes(m));
type Class = 'critical' | 'default' | 'sheddable';
/**
 * The load of each phase, as a multiple of capacity; the first gives the unloaded latency.
 * `PHASES=0.2,3` (for trying, no result written): a spike from light load straight to 3×.
 */
const PHASES = (process.env['PHASES'] ?? '0.2,1,2,3,5').split(',').map(Number);
const dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-overload-'));

interface Result {
  cls: Class;
  /** ms from the request's scheduled time to its answer (or to giving up). */
  latencyMs: number;
  status: number; // 0: no answer (timeout, connection error)
  retryAfter: boolean;
  /** performance.now() when the answer came (or the client gave up). */
  at: number;
}

interface PhaseFigures {
  load: number;
  sent: number;
  goodput: number; // 2xx per second
  success: Record<Class, number>; // share answered 2xx
  p99: Record<Class, number>; // of the 2xx answers, ms
  shed: number; // 503 answers
  shedWithRetryAfter: number;
  failed: number; // no answer within 5 s of its scheduled time (late, timed out or a connection error)
  reversals?: number;
}

interface RunFigures {
  mode: Mode;
  phases: PhaseFigures[];
  /** ms after the 5× load stopped until every critical probe succeeded fast again. */
  recoveryMs: number;
  up: boolean;
}

/** One request; resolves with its result, never rejects. */
function send(agent: http.Agent, port: number, cls: Class, scheduledAt: number): Promise<Result> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (status: number, retryAfter = false) => {
      if (done) return;
      done = true;
      const at = performance.now();
      resolve({ cls, latencyMs: at - scheduledAt, status, retryAfter, at });
    };
    const request = http.get(
      { agent, host: '127.0.0.1', port, path: `/${cls}`, timeout: TIMEOUT_MS },
      (res) => {
        res.resume();
        res.on('end', () => finish(res.statusCode ?? 0, res.headers['retry-after'] !== undefined));
        res.on('error', () => finish(0));
      },
    );
    request.on('timeout', () => {
      request.destroy();
      finish(0);
    });
    request.on('error', () => finish(0));
  });
}

/** The class of the `i`-th request: 20% critical, 40% default, 40% sheddable, interleaved. */
const classOf = (i: number): Class => (i % 5 === 0 ? 'critical' : i % 5 <= 2 ? 'default' : 'sheddable');

/** Sends `rate` requests a second for `durationMs` on schedule; resolves with every result. */
async function openLoad(agent: http.Agent, port: number, rate: number, durationMs: number, only?: Class) {
  const pending: Promise<Result>[] = [];
  const start = performance.now();
  const total = Math.round((rate * durationMs) / 1000);
  let next = 0;
  while (next < total) {
    const now = performance.now();
    while (next < total && start + (next * 1000) / rate <= now) {
      pending.push(send(agent, port, only ?? classOf(next), start + (next * 1000) / rate));
      next += 1;
    }
    await sleep(1);
  }
  return pending;
}

/** The figures of a phase sent from `start` for `seconds`: goodput counts the 2xx answered within it. */
function figures(load: number, results: Result[], start: number, seconds: number): PhaseFigures {
  // An answer later than the client's patience is no success, whatever its status: it gave up.
  const good = (r: Result) => r.status >= 200 && r.status < 300 && r.latencyMs <= TIMEOUT_MS;
  const ok = results.filter(good);
  const inWindow = ok.filter((r) => r.at <= start + seconds * 1000).length;
  const byClass = (cls: Class) => results.filter((r) => r.cls === cls);
  const rate = (cls: Class) => {
    const all = byClass(cls);
    return all.length === 0 ? 1 : all.filter(good).length / all.length;
  };
  const p99 = (cls: Class) =>
    percentile(
      ok.filter((r) => r.cls === cls).map((r) => r.latencyMs),
      99,
    );
  const shed = results.filter((r) => r.status === 503);
  return {
    load,
    sent: results.length,
    goodput: inWindow / seconds,
    success: { critical: rate('critical'), default: rate('default'), sheddable: rate('sheddable') },
    p99: { critical: p99('critical'), default: p99('default'), sheddable: p99('sheddable') },
    shed: shed.length,
    shedWithRetryAfter: shed.filter((r) => r.retryAfter).length,
    failed: results.filter((r) => r.status === 0 || r.latencyMs > TIMEOUT_MS).length,
  };
}

async function reversals(port: number): Promise<number | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('bulwark_protection_limit_reversals_total'));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** The app's capacity: 2xx per second of the unprotected app under a closed loop of 100 connections. */
async function capacityOf(): Promise<number> {
  const server = await startServer('bench/servers/overload.ts', { MODE: 'none', PORT: '3931' });
  try {
    const url = 'http://127.0.0.1:3931/default';
    await autocannon({ url, connections: 100, duration: SMOKE ? 1 : 3 });
    const result = await autocannon({ url, connections: 100, duration: SMOKE ? 1 : 5 });
    return result['2xx'] / 5;
  } finally {
    await stopServer(server);
  }
}

async function run(mode: Mode, capacity: number): Promise<RunFigures> {
  const port = 3932;
  const server = await startServer('bench/servers/overload.ts', {
    MODE: mode,
    PORT: String(port),
    BULWARK_DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
  });
  let up = true;
  server.once('exit', () => (up = false));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2000 });
  try {
    const phases: PhaseFigures[] = [];
    // Warm-up (JIT, connections), not counted.
    await Promise.all(await openLoad(agent, port, capacity * 0.2, 3000));
    for (const load of PHASES) {
      const before = await reversals(port);
      const start = performance.now();
      const results = await Promise.all(await openLoad(agent, port, capacity * load, phaseMs));
      const after = await reversals(port);
      const phase = figures(load, results, start, phaseMs / 1000);
      if (before !== undefined && after !== undefined) phase.reversals = after - before;
      phases.push(phase);
      process.stdout.write(
        `  ${mode.padEnd(14)} ${String(load).padStart(3)}×  goodput ${Math.round(phase.goodput)}/s  ` +
          `critical ${(phase.success.critical * 100).toFixed(1)}% p99 ${phase.p99.critical.toFixed(1)} ms  ` +
          `default ${(phase.success.default * 100).toFixed(1)}%  sheddable ${(phase.success.sheddable * 100).toFixed(1)}%  ` +
          `503 ${phase.shed}  failed ${phase.failed}${phase.reversals === undefined ? '' : `  reversals ${phase.reversals}`}\n`,
      );
    }
    // Recovery: the load stops; critical probes at 20 a second. Recovered once every later probe succeeds
    // within 3× the unloaded p99.
    const unloadedP99 = phases[0]?.p99.critical ?? 10;
    const probes = await Promise.all(await openLoad(agent, port, 20, 5000, 'critical'));
    let recoveryMs = 0;
    probes.forEach((probe, i) => {
      const bad = probe.status !== 200 || probe.latencyMs > Math.max(3 * unloadedP99, 20);
      if (bad) recoveryMs = (i + 1) * 50;
    });
    return { mode, phases, recoveryMs, up: up && server.exitCode === null };
  } finally {
    agent.destroy();
    await stopServer(server);
  }
}

console.log(describeMachine(['fastify', '@fastify/under-pressure']));
// CAPACITY=<req/s> skips the calibration (to compare settings at one capacity).
const capacity = process.env['CAPACITY'] === undefined ? await capacityOf() : Number(process.env['CAPACITY']);
console.log(`capacity (no protection, closed loop of 100 connections): ${Math.round(capacity)} req/s`);
console.log(`phases of ${phaseMs / 1000} s at ${PHASES.join('×, ')}× capacity, ${rounds} round(s)\n`);
const runs: RunFigures[] = [];
for (let round = 1; round <= rounds; round += 1) {
  const order = round % 2 === 1 ? MODES : [...MODES].reverse();
  for (const mode of order) runs.push(await run(mode, capacity));
}
rmSync(dataDir, { recursive: true, force: true });

const markdown = overloadMarkdown(capacity, phaseMs, runs);
console.log(`\n${markdown}`);
// Only a run of every server at the default settings is a result (docs/benchmarks.md reads it).
if (
  !SMOKE &&
  MODES.length === ALL_MODES.length &&
  process.env['PROTECTION'] === undefined &&
  process.env['CAPACITY'] === undefined
) {
  const wrote = writeResult(
    {
      benchmark: 'overload',
      packages: ['fastify', '@fastify/under-pressure'],
      settings: { rounds, phaseMs, capacity },
      markdown,
      data: { capacity, phaseMs, runs },
    },
    ['ROUNDS', 'PHASE_S', 'PHASES'],
  );
  if (wrote) writeFileSync('docs/images/overload.svg', overloadChart(capacity, runs, PHASES.slice(1)));
  if (wrote) console.log('wrote docs/images/overload.svg');
}

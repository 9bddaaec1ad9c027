// Redis outages under HTTP load. Fastify + Bulwark with REDIS_URL (bench/servers/cached.ts: GET
// /items/:id through a rate limit on Redis, a queue add on BullMQ and bulwark.cache.getOrSet) under
// autocannon while the benchmark SIGKILLs Redis at 5 s and restarts it (empty) at 10 s, or SIGSTOPs
// and SIGCONTs it; the peer is the same server with Redis healthy throughout, measured in the same
// run. Rounds alternate the order of the scenarios. Per scenario: requests, failed requests,
// throughput, p99 and max per window (before; the outage, from the signal until the app is back on
// the primary, both switches included; after) and per second of the whole run, from each
// response's own latency, and when the app switched, read from /health polled every 20 ms. Per
// window too: the host canary, the app's CPU per response, its garbage collections (its own GC
// observer, bench/servers/gc-report.ts), and Redis's commands per response.
//   npm run bench:failover     (defaults: ROUNDS=3 DURATION=15 DOWN_AT=5 UP_AT=10 CONNECTIONS=50
//                               KEYS=20000; writes bench/results/failover.json; a run with any of
//                               them set writes no result)
import autocannon from 'autocannon';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort } from '../test/helpers/process.js';
import { redisClient, startRedis, type RedisServer } from '../test/helpers/redis.js';
import { startCanary, type Canary } from './canary.js';
import { GcLog, type GcSample, type GcWindow } from './gc-stats.js';
import { sampleRedis, type RedisWindow } from './redis-stats.js';
import {
  cpuSeconds,
  describeMachine,
  median,
  percentile,
  sleep,
  startServer,
  stopServer,
  knob,
  writeResult,
} from './lib.js';

const rounds = knob('ROUNDS', 3, 1);
const duration = knob('DURATION', 15, 6);
const downAtMs = knob('DOWN_AT', 5, 2) * 1000;
const upAtMs = knob('UP_AT', 10, 4) * 1000;
const connections = knob('CONNECTIONS', 50, 10);
const keys = knob('KEYS', 20_000, 500);
const WARMUP_S = 2;
const POLL_MS = 20;
const CPU_SAMPLE_MS = 250;

const SCENARIOS = ['baseline', 'kill', 'pause'] as const;
type Scenario = (typeof SCENARIOS)[number];

/** A failed request: a non-2xx answer or a request error, at ms since the load started. */
interface Failure {
  at: number;
  what: string;
}

type Phase = 'before' | 'outage' | 'after';
const PHASES: Phase[] = ['before', 'outage', 'after'];
const fixed = (value: number | undefined, digits = 1) =>
  value === undefined ? 'n/a' : Number.isFinite(value) ? value.toFixed(digits) : 'never';

/** A window's share of the responses. */
interface Window {
  count: number;
  /** Responses per second over the window. */
  rate: number;
  p99: number;
  /** Slowest response in the window, ms (0 when it has none). */
  max: number;
}

interface Run {
  scenario: Scenario;
  /** Responses in the measured run (warm-up excluded). */
  requests: number;
  /** Failed requests; `at` < 0 during the warm-up. */
  failures: Failure[];
  before: Window;
  outage: Window;
  after: Window;
  /** Responses, p99 and max (ms) per second of the measured run. */
  perSecond: Window[];
  /** The app's CPU µs (user + system, all its threads) per response, over each window. */
  cpu: Record<Phase, number | undefined>;
  /** The same, of the main thread alone (the event loop). */
  cpuMain: Record<Phase, number | undefined>;
  /** The host canary's median µs per unit of work over each window (bench/canary.ts). */
  host: Record<Phase, number | undefined>;
  /** What Redis did per response before the signal and after the outage (bench/redis-stats.ts). */
  redis: Record<'before' | 'after', RedisWindow | undefined>;
  /** The app's garbage collections over each window, from its own GC observer (bench/gc-stats.ts). */
  gc: Record<Phase, GcWindow | undefined>;
  /** ms since the load started when the outage window ends (the app back on the primary). */
  outageEnd?: number;
  /** Every failover switch the app reported, at ms since the load started (< 0: warm-up). */
  switches: { to: string; reason: string; at: number }[];
  /** ms since the load started; undefined for the baseline. */
  downAt?: number;
  upDone?: number;
  /** True when a switch with Redis up had left the app on the fallback when the outage began. */
  alreadyOnFallback?: boolean;
  /** The app's own switch times (IPC, its clock) and the first /health answers showing them. */
  fallbackAt?: number;
  primaryAt?: number;
  healthWarnAt?: number;
  healthPassAt?: number;
}

/** CPU seconds (user + system) the process's main thread (its event loop) has used; 0 once gone. */
function mainThreadCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ ticks
  } catch {
    return 0;
  }
}

/** A CPU sample: ms since the load began, the app's CPU seconds (all threads, the main thread). */
type CpuSample = [at: number, all: number, main: number];

/** The app's CPU seconds at `at` (ms since the load began), interpolated between the samples. */
function cpuAtTime(samples: CpuSample[], at: number, column: 1 | 2): number {
  const next = samples.findIndex(([t]) => t >= at);
  if (next <= 0) return samples[next === 0 ? 0 : samples.length - 1]?.[column] ?? 0;
  const [t1] = samples[next - 1]!;
  const [t2] = samples[next]!;
  const s1 = samples[next - 1]![column];
  const s2 = samples[next]![column];
  return t2 === t1 ? s2 : s1 + ((s2 - s1) * (at - t1)) / (t2 - t1);
}

function windowOf(times: number[], latencies: number[], from: number, to: number): Window {
  const inside: number[] = [];
  for (let i = 0; i < times.length; i++) if (times[i]! >= from && times[i]! < to) inside.push(latencies[i]!);
  const seconds = (Math.min(to, duration * 1000) - from) / 1000;
  let max = 0;
  for (const latency of inside) if (latency > max) max = latency;
  return {
    count: inside.length,
    rate: seconds > 0 ? inside.length / seconds : 0,
    p99: percentile(inside, 99),
    max,
  };
}

/** Polls /health every {@link POLL_MS} ms; records when `redis:mode` changes, at the answer's arrival. */
function pollHealth(port: number, since: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const changes: { at: number; status: string }[] = [];
  let running = true;
  let last = '';
  const get = () =>
    new Promise<string>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/health', agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => {
            const report = JSON.parse(body) as { checks?: Record<string, { status: string }[]> };
            resolve(report.checks?.['redis:mode']?.[0]?.status ?? 'missing');
          });
        })
        .on('error', reject);
    });
  const loop = (async () => {
    while (running) {
      const status = await get().catch((error: Error) => `error: ${error.message}`);
      if (status !== last) changes.push({ at: performance.now() - since, status });
      last = status;
      await sleep(POLL_MS);
    }
  })();
  return {
    changes,
    async stop() {
      running = false;
      await loop;
      agent.destroy();
    },
  };
}

async function flush(redis: RedisServer): Promise<void> {
  const client = redisClient(redis.url);
  try {
    await client.connect();
    await client.flushall();
  } finally {
    client.disconnect();
  }
}

async function run(redis: RedisServer, scenario: Scenario, canary: Canary): Promise<Run> {
  await flush(redis);
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-'));
  const server = await startServer('bench/servers/cached.ts', {
    PORT: String(port),
    BULWARK_DATA_DIR: dataDir,
    REDIS_URL: redis.url,
  });
  const switches: { to: string; reason: string; wall: number }[] = [];
  const gc = new GcLog();
  server.on('message', (message: { type: string; to?: string; reason?: string; at?: number } | GcSample) => {
    if (message.type === 'gc') gc.add(message as GcSample);
    else if (message.type === 'mode')
      switches.push({ to: message.to ?? '?', reason: message.reason ?? '?', wall: message.at ?? 0 });
  });
  try {
    const url = `http://127.0.0.1:${port}`;
    const failures: Failure[] = [];
    const times: number[] = [];
    const latencies: number[] = [];
    // Times are relative to the start of the measured load; the warm-up's come out negative.
    let t0 = performance.now() + WARMUP_S * 1000;
    const item: autocannon.Request = {
      setupRequest: (request) => ({ ...request, path: `/items/${Math.floor(Math.random() * keys)}` }),
      onResponse: (status, body) => {
        if (status < 200 || status >= 300)
          failures.push({ at: performance.now() - t0, what: `${status} ${body.slice(0, 160)}` });
      },
    };
    // Every key once first, so Redis holds the whole working set before the clock starts: the
    // windows then compare steady states (a service whose Redis fails has a warm cache), not a
    // cache filling up during the run. Then the timed warm-up for the JIT and L1.
    let next = 0;
    const fill = await autocannon({
      url,
      connections,
      amount: keys,
      requests: [{ ...item, setupRequest: (request) => ({ ...request, path: `/items/${next++ % keys}` }) }],
    });
    const warmup = await autocannon({ url, connections, duration: WARMUP_S, requests: [item] }); // JIT, L1
    if (fill.errors + warmup.errors > 0)
      failures.push({ at: -1, what: `${fill.errors + warmup.errors} request errors during the warm-up` });

    const wallStart = Date.now();
    t0 = performance.now();
    const poll = pollHealth(port, t0);
    const load = new Promise<autocannon.Result>((resolve, reject) => {
      const instance = autocannon({ url, connections, duration, requests: [item] }, (error, result) =>
        error ? reject(error as Error) : resolve(result),
      );
      instance.on('response', (_client, _status, _bytes, responseTime) => {
        times.push(performance.now() - t0);
        latencies.push(responseTime);
      });
      instance.on('reqError', (error: Error) =>
        failures.push({ at: performance.now() - t0, what: error.message }),
      );
    });
    const now = () => performance.now() - t0;
    // The app's CPU time through the run, to divide by the responses of each window.
    const pid = server.pid ?? 0;
    const cpuAt: CpuSample[] = [[0, cpuSeconds(pid), mainThreadCpuSeconds(pid)]];
    const cpuSampler = setInterval(
      () => cpuAt.push([now(), cpuSeconds(pid), mainThreadCpuSeconds(pid)]),
      CPU_SAMPLE_MS,
    );
    const redisStats = await sampleRedis(redis.url, CPU_SAMPLE_MS, now);
    let downAt: number | undefined;
    let upDone: number | undefined;
    if (scenario !== 'baseline') {
      await sleep(downAtMs - now());
      downAt = now();
      await (scenario === 'kill' ? redis.kill() : redis.pause());
      await sleep(upAtMs - now());
      await (scenario === 'kill' ? redis.restart() : redis.resume());
      upDone = now();
    }
    const result = await load;
    // Every response is in by now: the last window, and its CPU time, end here.
    const end = now();
    clearInterval(cpuSampler);
    cpuAt.push([end, cpuSeconds(pid), mainThreadCpuSeconds(pid)]);
    await redisStats.stop();
    await poll.stop();
    const counted = result.errors + result.non2xx;
    const seen = failures.filter((f) => f.at >= 0).length;
    if (counted !== seen)
      failures.push({ at: -1, what: `autocannon counted ${counted} failures, events ${seen}` });
    const relative = switches.map((s) => ({ to: s.to, reason: s.reason, at: s.wall - wallStart }));
    const from = downAt ?? downAtMs;
    // The outage window runs until the app is back on the primary (its own switch, else /health),
    // so the failback and the replay that follows Redis's return count as the outage, not "after".
    const primaryAt =
      upDone === undefined ? undefined : relative.find((s) => s.to === 'primary' && s.at >= upDone)?.at;
    const healthPassAt =
      upDone === undefined ? undefined : poll.changes.find((c) => c.status === 'pass' && c.at >= upDone)?.at;
    const to =
      upDone === undefined ? upAtMs : Math.max(upDone, primaryAt ?? healthPassAt ?? Number.POSITIVE_INFINITY);
    const windows: Record<Phase, [number, number]> = {
      before: [0, from],
      outage: [from, to],
      after: [to, end],
    };
    const per = <T>(f: (phase: Phase, [a, b]: [number, number]) => T) =>
      Object.fromEntries(PHASES.map((phase) => [phase, f(phase, windows[phase])])) as Record<Phase, T>;
    const measured = per((_, [a, b]) => windowOf(times, latencies, a, b));
    const perResponse = (phase: Phase, a: number, b: number, column: 1 | 2) =>
      measured[phase].count === 0
        ? undefined
        : ((cpuAtTime(cpuAt, b, column) - cpuAtTime(cpuAt, a, column)) * 1e6) / measured[phase].count;
    return {
      scenario,
      requests: times.length,
      failures,
      ...measured,
      cpu: per((phase, [a, b]) => perResponse(phase, a, b, 1)),
      cpuMain: per((phase, [a, b]) => perResponse(phase, a, b, 2)),
      redis: {
        before: redisStats.window(times, ...windows.before),
        after: redisStats.window(times, ...windows.after),
      },
      gc: per((phase, [a, b]) => gc.window(wallStart, a, b, measured[phase].count)),
      host: per((_, [a, b]) =>
        canary.median(performance.timeOrigin + t0 + a, performance.timeOrigin + t0 + b),
      ),
      ...(upDone === undefined ? {} : { outageEnd: to }),
      perSecond: Array.from({ length: duration }, (_, s) =>
        windowOf(times, latencies, s * 1000, (s + 1) * 1000),
      ),
      switches: relative,
      ...(downAt === undefined || upDone === undefined
        ? {}
        : {
            downAt,
            upDone,
            alreadyOnFallback: relative.filter((s) => s.at < downAt).at(-1)?.to === 'fallback',
            fallbackAt: relative.find((s) => s.to === 'fallback' && s.at >= downAt)?.at,
            primaryAt,
            healthWarnAt: poll.changes.find((c) => c.status === 'warn' && c.at >= downAt)?.at,
            healthPassAt,
          }),
    };
  } finally {
    await stopServer(server);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Switches to the fallback while Redis was up: before the outage, or in a baseline run. */
function spurious(r: Run): Run['switches'] {
  return r.switches.filter(
    (s) => s.to === 'fallback' && (r.downAt === undefined || s.at < r.downAt || s.at > (r.upDone ?? 0)),
  );
}

const ms = (value: number | undefined, digits = 0) =>
  value === undefined || !Number.isFinite(value) ? 'never' : `${value.toFixed(digits)} ms`;
const since = (at: number | undefined, from: number | undefined) =>
  at === undefined || from === undefined ? undefined : at - from;

const PACKAGES = ['fastify', 'ioredis', 'bullmq', 'autocannon'];
console.log(describeMachine(PACKAGES));
console.log(
  `autocannon -c ${connections} -d ${duration} after one request per id (Redis holds them all) and a ${WARMUP_S} s warm-up; GET /items/<random of ${keys}>;` +
    ` outage from ${downAtMs / 1000} s to ${upAtMs / 1000} s; ${rounds} rounds alternating\n`,
);
const redis = await startRedis();
const canary = await startCanary();
const runs: Run[] = [];
try {
  for (let round = 1; round <= rounds; round += 1) {
    const order = round % 2 === 1 ? [...SCENARIOS] : [...SCENARIOS].reverse();
    for (const scenario of order) {
      const r = await run(redis, scenario, canary);
      runs.push(r);
      console.log(
        `round ${round} ${scenario.padEnd(8)} ${String(r.requests).padStart(7)} req  failed ${r.failures.length}` +
          `  p99 before ${r.before.p99.toFixed(1)} / outage ${r.outage.p99.toFixed(1)} / after ${r.after.p99.toFixed(1)} ms` +
          (r.downAt === undefined
            ? ''
            : (r.alreadyOnFallback
                ? '  already on the fallback'
                : `  fallback +${ms(since(r.fallbackAt, r.downAt))} (/health +${ms(since(r.healthWarnAt, r.downAt))})`) +
              `  primary +${ms(since(r.primaryAt, r.upDone))} (/health +${ms(since(r.healthPassAt, r.upDone))}) after Redis was back`),
      );
      console.log(
        `    per second, responses/p99/max ms: ${r.perSecond.map((w) => `${(w.count / 1000).toFixed(1)}k/${w.p99.toFixed(0)}/${w.max.toFixed(0)}`).join(' ')}`,
      );
      console.log(
        `    app CPU µs per response before/outage/after ${PHASES.map((p) => fixed(r.cpu[p])).join('/')};` +
          ` host canary µs ${PHASES.map((p) => fixed(r.host[p], 0)).join('/')}`,
      );
      console.log(
        `    switches (ms since the load began, < 0 = warm-up): ${r.switches.map((s) => `${s.to}@${s.at} (${s.reason})`).join(', ') || 'none'}`,
      );
      for (const s of spurious(r))
        console.log(`    !! switched to the fallback at ${s.at} ms with Redis up (${s.reason})`);
      for (const f of r.failures.slice(0, 10)) {
        const rel =
          r.downAt === undefined ? '' : ` (${(f.at - r.downAt).toFixed(0)} ms after the outage began)`;
        console.log(`    failed at ${f.at.toFixed(0)} ms${rel}: ${f.what}`);
      }
      if (r.failures.length > 10) console.log(`    ... ${r.failures.length - 10} more`);
    }
  }
} finally {
  await canary.stop();
  await redis.stop();
}

/** Median over a scenario's runs of the defined values; undefined when there are none. */
const of = (scenario: Scenario, f: (r: Run) => number | undefined): number | undefined => {
  const values = runs
    .filter((r) => r.scenario === scenario)
    .map(f)
    .filter((v) => v !== undefined);
  return values.length === 0 ? undefined : median(values);
};
const LABELS: Record<Scenario, string> = {
  baseline: 'baseline (Redis up)',
  kill: 'Redis SIGKILL → restart',
  pause: 'Redis SIGSTOP → SIGCONT',
};
const base = {
  before: of('baseline', (r) => r.before.p99) ?? 0,
  outage: of('baseline', (r) => r.outage.p99) ?? 0,
  after: of('baseline', (r) => r.after.p99) ?? 0,
};
const added = (value: number | undefined, baseline: number) =>
  value === undefined ? 'n/a' : `${value - baseline >= 0 ? '+' : ''}${(value - baseline).toFixed(1)}`;
const md: string[] = [
  `autocannon \`-c ${connections} -d ${duration}\` after one request per id (Redis holds them all) and a ${WARMUP_S} s warm-up; \`GET /items/<random of ${keys}>\`` +
    ` (a rate limit on Redis, a queue add on BullMQ, the cache); Redis down from ${downAtMs / 1000} s to` +
    ` ${upAtMs / 1000} s; ${rounds} rounds, the order of the scenarios alternating; medians over rounds.` +
    ` Windows: before (0 s → the signal), the outage (the signal → the app back on the primary, both` +
    ` switches and the replay included), after (→ the end); the baseline's windows are the nominal` +
    ` ${downAtMs / 1000}–${upAtMs / 1000} s. _Added p99_: the scenario's p99 minus the baseline's over the same window;` +
    ` before the signal nothing differs yet, so the added p99 there is the control: how far apart two runs of the same` +
    ` load lie on this host.`,
  '',
  '| scenario | requests | non-2xx + errors | req/s before | req/s outage | req/s after |' +
    ' p99 before (ms) | p99 outage (ms) | p99 after (ms) | max before (ms) | max outage (ms) | max after (ms) |' +
    ' added p99, before: the control (ms) | added p99, outage (ms) | added p99, after (ms) |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const scenario of SCENARIOS) {
  const before = of(scenario, (r) => r.before.p99);
  const outage = of(scenario, (r) => r.outage.p99);
  const after = of(scenario, (r) => r.after.p99);
  const cells = [
    LABELS[scenario],
    fixed(
      of(scenario, (r) => r.requests),
      0,
    ),
    fixed(
      of(scenario, (r) => r.failures.length),
      0,
    ),
    fixed(
      of(scenario, (r) => r.before.rate),
      0,
    ),
    fixed(
      of(scenario, (r) => r.outage.rate),
      0,
    ),
    fixed(
      of(scenario, (r) => r.after.rate),
      0,
    ),
    fixed(before),
    fixed(outage),
    fixed(after),
    fixed(of(scenario, (r) => r.before.max)),
    fixed(of(scenario, (r) => r.outage.max)),
    fixed(of(scenario, (r) => r.after.max)),
    scenario === 'baseline' ? '—' : added(before, base.before),
    scenario === 'baseline' ? '—' : added(outage, base.outage),
    scenario === 'baseline' ? '—' : added(after, base.after),
  ];
  md.push(`| ${cells.join(' | ')} |`);
}
const failback = (r: Run) => since(r.healthPassAt, r.upDone) ?? Number.POSITIVE_INFINITY;
md.push(
  '',
  '| scenario | to the fallback (app) | /health shows `warn` | back on the primary (app) |' +
    ' /health shows `pass` (target ≤ 2 s) | switches to the fallback with Redis up |',
  '|---|---|---|---|---|---|',
);
for (const scenario of SCENARIOS) {
  const cells =
    scenario === 'baseline'
      ? ['—', '—', '—', '—']
      : [
          `+${fixed(
            of(scenario, (r) => (r.alreadyOnFallback ? undefined : since(r.fallbackAt, r.downAt))),
            0,
          )} ms`,
          `+${fixed(
            of(scenario, (r) => (r.alreadyOnFallback ? undefined : since(r.healthWarnAt, r.downAt))),
            0,
          )} ms`,
          `+${fixed(
            of(scenario, (r) => since(r.primaryAt, r.upDone) ?? Number.POSITIVE_INFINITY),
            0,
          )} ms`,
          `+${fixed(of(scenario, failback), 0)} ms`,
        ];
  const stray = runs.filter((r) => r.scenario === scenario).reduce((n, r) => n + spurious(r).length, 0);
  md.push(`| ${LABELS[scenario]} | ${cells.join(' | ')} | ${stray} in ${rounds} runs |`);
}

// The whole run second by second: the switch stall and the failback dip show here, not in a window.
const phase = (s: number) =>
  (s + 1) * 1000 <= downAtMs ? 'before' : s * 1000 >= upAtMs ? 'after (Redis back)' : 'Redis down';
const worst = (scenario: Scenario, f: (r: Run) => number) =>
  Math.max(...runs.filter((r) => r.scenario === scenario).map(f));
md.push(
  '',
  `Per second of the run (Redis down from ${downAtMs / 1000} s to ${upAtMs / 1000} s): responses per second` +
    ` and p99, medians over rounds; max, the slowest response of any round.`,
  '',
  `| second | Redis | ${SCENARIOS.map((s) => `${LABELS[s]}: req/s | p99 (ms) | max (ms)`).join(' | ')} |`,
  `|---|---|${SCENARIOS.map(() => '---|---|---|').join('')}`,
);
for (let second = 0; second < duration; second += 1) {
  const cells = SCENARIOS.flatMap((scenario) => [
    fixed(
      of(scenario, (r) => r.perSecond[second]?.rate),
      0,
    ),
    fixed(of(scenario, (r) => r.perSecond[second]?.p99)),
    fixed(
      worst(scenario, (r) => r.perSecond[second]?.max ?? 0),
      0,
    ),
  ]);
  md.push(`| ${second}–${second + 1} s | ${phase(second)} | ${cells.join(' | ')} |`);
}
// What the host did meanwhile, and the app's own cost: the same code runs up to ~2.5× slower for
// seconds at a time on these hosts, and a closed loop's p99 moves with it. The app's CPU per
// response, against the baseline's over the same window (before the signal: the control), says
// how much more work a window took; the host canary shows whether the host moved meanwhile.
/** A figure of the scenario's run in a round, and of the same round's baseline. */
const withBaseline = (round: Run[], scenario: Scenario, figure: (r: Run) => number | undefined) => {
  const own = round.find((r) => r.scenario === scenario);
  const peer = round.find((r) => r.scenario === 'baseline');
  const a = own === undefined ? undefined : figure(own);
  const b = peer === undefined ? undefined : figure(peer);
  return a === undefined || b === undefined ? undefined : { own: a, baseline: b };
};
/** A run's app CPU per response over a window, ÷ the same round's baseline's. */
const cpuAgainstBaseline = (
  round: Run[],
  scenario: Scenario,
  phase: Phase,
  cpu: (r: Run) => number | undefined = (r) => r.cpu[phase],
) => {
  const pair = withBaseline(round, scenario, cpu);
  return pair === undefined ? undefined : pair.own / pair.baseline;
};
const ratio = (value: number | undefined) => (value === undefined ? 'n/a' : `${value.toFixed(2)}×`);
/** The median over rounds of {@link cpuAgainstBaseline}, as a table cell. */
const medianAgainstBaseline = (scenario: Scenario, phase: Phase, cpu?: (r: Run) => number | undefined) => {
  if (scenario === 'baseline') return '—';
  const values = byRound
    .map((round) => cpuAgainstBaseline(round, scenario, phase, cpu))
    .filter((v) => v !== undefined);
  return ratio(values.length === 0 ? undefined : median(values));
};
/** The runs of each round (runs are pushed round by round). */
const byRound = Array.from({ length: rounds }, (_, i) =>
  runs.slice(i * SCENARIOS.length, (i + 1) * SCENARIOS.length),
);
md.push(
  '',
  'What the host and the app did in each window, medians over rounds: the host canary (bench/canary.ts: a' +
    " fixed unit of work timed every 50 ms in a process of its own; more µs, a slower host) and the app's CPU" +
    ' time (user + system, all its threads) per response; the last two columns divide it by the same' +
    " round's baseline's over the same window (before the signal, the control).",
  '',
  '| scenario | host canary µs, before | outage | after | app CPU µs/response, before | outage | after |' +
    " ÷ the baseline's, before: the control | ÷ the baseline's, after |",
  '|---|---|---|---|---|---|---|---|---|',
);
for (const scenario of SCENARIOS) {
  const against = (phase: Phase) => medianAgainstBaseline(scenario, phase);
  const cells = [
    ...PHASES.map((phase) =>
      fixed(
        of(scenario, (r) => r.host[phase]),
        0,
      ),
    ),
    ...PHASES.map((phase) => fixed(of(scenario, (r) => r.cpu[phase]))),
    against('before'),
    against('after'),
  ];
  md.push(`| ${LABELS[scenario]} | ${cells.join(' | ')} |`);
}
const cpuPerRound = (scenario: Scenario, phase: Phase) =>
  byRound.map((round) => ratio(cpuAgainstBaseline(round, scenario, phase))).join(', ');
md.push(
  '',
  "Per round, the app's CPU per response ÷ that round's baseline's: after a kill" +
    ` ${cpuPerRound('kill', 'after')}, after a pause ${cpuPerRound('pause', 'after')}; the control (before the` +
    ` signal) ${cpuPerRound('kill', 'before')} and ${cpuPerRound('pause', 'before')}.`,
);
// Which side of the process the extra CPU is on: the event loop (the requests, and the paced
// catch-up steps between them) or the threads beside it.
const others = (phase: Phase) => (r: Run) => {
  const all = r.cpu[phase];
  const main = r.cpuMain[phase];
  return all === undefined || main === undefined ? undefined : all - main;
};
md.push(
  '',
  "The app's CPU per response split between its main thread (the event loop: the requests, and the paced" +
    " catch-up steps between them) and its other threads (the store's worker threads, V8's garbage-collection" +
    " helpers, libuv's pool), µs, medians over rounds; ÷ the same round's baseline's after the outage.",
  '',
  "| scenario | main thread, before | after | ÷ the baseline's, after | other threads, before | after | ÷ the baseline's, after |",
  '|---|---|---|---|---|---|---|',
);
for (const scenario of SCENARIOS) {
  const against = (cpu: (r: Run) => number | undefined) => medianAgainstBaseline(scenario, 'after', cpu);
  const cells = [
    fixed(of(scenario, (r) => r.cpuMain.before)),
    fixed(of(scenario, (r) => r.cpuMain.after)),
    against((r) => r.cpuMain.after),
    fixed(of(scenario, others('before'))),
    fixed(of(scenario, others('after'))),
    against(others('after')),
  ];
  md.push(`| ${LABELS[scenario]} | ${cells.join(' | ')} |`);
}
// What the threads beside the event loop do after the failback: V8 finishes a full collection of
// the old generation mostly on its helper threads, and when one lands depends on how fast the old
// generation grew before it.
const gcCell = (scenario: Scenario, phase: Phase, f: (w: GcWindow) => number | undefined, digits: number) =>
  fixed(
    of(scenario, (r) => {
      const w = r.gc[phase];
      return w === undefined ? undefined : f(w);
    }),
    digits,
  );
md.push(
  '',
  "The app's garbage collections in each window, medians over rounds, from its own GC observer (reported" +
    " every 250 ms): full (mark-compact) collections finished; the main thread's time in collections per" +
    " response (scavenges, and the full collections' incremental and final steps: their concurrent marking" +
    " and sweeping run on V8's helper threads, among the other threads above); and how fast the old" +
    ' generation grew (what outlived the young generation; the sum of its rises between reports).',
  '',
  '| scenario | full collections, before | outage | after | GC on the main thread µs/response, before | outage | after |' +
    ' old generation grows MB/s, before | outage | after |',
  '|---|---|---|---|---|---|---|---|---|---|',
);
for (const scenario of SCENARIOS) {
  const cells = [
    ...PHASES.map((phase) => gcCell(scenario, phase, (w) => w.full, 0)),
    ...PHASES.map((phase) => gcCell(scenario, phase, (w) => w.pausePerResponse, 1)),
    ...PHASES.map((phase) => gcCell(scenario, phase, (w) => w.oldGrowth, 1)),
  ];
  md.push(`| ${LABELS[scenario]} | ${cells.join(' | ')} |`);
}
const withFullAfter = (scenario: Scenario) => {
  const own = runs.filter((r) => r.scenario === scenario);
  return `${own.filter((r) => (r.gc.after?.full ?? 0) > 0).length} of ${own.length}`;
};
md.push(
  '',
  `Runs with a full collection in the after window: ${SCENARIOS.map((s) => `${LABELS[s]} ${withFullAfter(s)}`).join(', ')}.`,
);
// Where the after window's extra work goes to Redis: a SIGKILLed Redis (no persistence here, as
// most caches run) comes back empty, and each L1 miss then writes its value back.
md.push(
  '',
  "What Redis did per response, medians over rounds (INFO commandstats from a connection of the benchmark's own," +
    ' sampled every 250 ms; commands run inside scripts counted; Redis has no persistence, so a SIGKILL empties' +
    " it). The route's rate limit and queue add run scripts on every request; the cache reads Redis on an L1 miss" +
    ' and writes it when Redis misses too.',
  '',
  '| scenario | commands per response, before | after | GET, before | after | SET, before | after | keys in Redis at the start, before | after |',
  '|---|---|---|---|---|---|---|---|---|',
);
for (const scenario of SCENARIOS) {
  const cell = (window: 'before' | 'after', f: (w: RedisWindow) => number, digits = 2) =>
    fixed(
      of(scenario, (r) => {
        const w = r.redis[window];
        return w === undefined ? undefined : f(w);
      }),
      digits,
    );
  const cells = [
    ...(['before', 'after'] as const).map((w) => cell(w, (r) => r.commands)),
    ...(['before', 'after'] as const).map((w) => cell(w, (r) => r.gets)),
    ...(['before', 'after'] as const).map((w) => cell(w, (r) => r.sets)),
    ...(['before', 'after'] as const).map((w) => cell(w, (r) => r.keys, 0)),
  ];
  md.push(`| ${LABELS[scenario]} | ${cells.join(' | ')} |`);
}
const failedTotal = runs.reduce((n, r) => n + r.failures.length, 0);
const spuriousTotal = runs.reduce((n, r) => n + spurious(r).length, 0);
const addedOutage =
  Math.max(of('kill', (r) => r.outage.p99) ?? 0, of('pause', (r) => r.outage.p99) ?? 0) - base.outage;
const addedAfter =
  Math.max(of('kill', (r) => r.after.p99) ?? 0, of('pause', (r) => r.after.p99) ?? 0) - base.after;
/** Per round, the scenario's p99 over a window minus that round's baseline's. */
const perRound = (scenario: Scenario, window: 'before' | 'after') =>
  byRound
    .map((round) => {
      const pair = withBaseline(round, scenario, (r) => r[window].p99);
      return pair === undefined ? 'n/a' : added(pair.own, pair.baseline);
    })
    .join(', ');
const failbackWorst = Math.max(...runs.filter((r) => r.scenario !== 'baseline').map(failback));
const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
md.push(
  '',
  `Failed requests, all runs: ${failedTotal} (target 0: ${met(failedTotal === 0)});` +
    ` added p99 over the outage window (both switches included), worst scenario median: ${addedOutage.toFixed(1)} ms` +
    ` (target ≤ 5 ms: ${met(addedOutage <= 5)}); after: ${addedAfter.toFixed(1)} ms (target ≤ 5 ms: ${met(addedAfter <= 5)});` +
    ` back on the primary (/health), worst run: ${ms(failbackWorst)} (target ≤ 2 s: ${met(failbackWorst <= 2000)});` +
    ` switches to the fallback with Redis up, all runs: ${spuriousTotal}.`,
  '',
  `Per round, against that round's baseline: after a kill ${perRound('kill', 'after')} ms, after a pause` +
    ` ${perRound('pause', 'after')} ms; the control (before the signal) ${perRound('kill', 'before')} ms` +
    ` and ${perRound('pause', 'before')} ms.`,
);
const markdown = md.join('\n');
console.log(`\n${markdown}`);
writeResult(
  {
    benchmark: 'failover',
    packages: PACKAGES,
    settings: {
      rounds,
      duration,
      downAtMs,
      upAtMs,
      connections,
      keys,
      warmupS: WARMUP_S,
      healthPollMs: POLL_MS,
    },
    markdown,
    // Every run's figures; failures capped at 100 per run (their count is `failed`).
    data: runs.map((r) => ({ ...r, failed: r.failures.length, failures: r.failures.slice(0, 100) })),
  },
  ['ROUNDS', 'DURATION', 'DOWN_AT', 'UP_AT', 'CONNECTIONS', 'KEYS'],
);

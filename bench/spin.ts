// Spin under load (`npm run bench:spin`): the bundle as `npm start` runs it (one process, SQLite),
// against the targets on one machine — 10,000 waiting users each with a live stream open,
// joins at 2,000/s with join p99 < 20 ms, match-to-event p99 < 100 ms — and the server's memory per
// connected user.
//
// Phase 1: USERS men seeking women connect their streams, then join at JOIN_RATE a second. Nobody
// can be matched, so all of them wait, connected. Phase 2: MATCHES women seeking men join at
// WOMEN_RATE a second; each is matched with the man who waited longest, and the time from the match
// (the event's `at`, written by the server) to the event arriving on both streams is the
// match-to-event latency, measured by the client (and by the server's spin_match_event_seconds).
// The load client runs on the same machine, its CPU the server's competition: joins are sent from
// this process, the streams held by another (spin-streams.ts), so neither's pauses are the other's.
// Defaults: USERS=10000 JOIN_RATE=2000 MATCHES=1000 WOMEN_RATE=200 (with streams); a full run writes
// bench/results/spin.json, a run with any of them (or STREAMS=0, or SPIN_WARMUP_JOINS) set writes no
// result. The joins start 2 s after the last stream opened. The server warms up before it listens,
// as `npm start`'s does (examples/spin/src/warmup.ts; SPIN_WARMUP_JOINS=0 starts it cold); the
// start's time, warm-up included, is in the table. To look inside: TIMELINE=1 prints each half
// second's latencies (TIMELINE_MS sets another window) and the phases on the server's clock,
// SERVER_NODE_ARGS adds node flags to the server's (`--cpu-prof --cpu-prof-dir=…`, `--trace-gc`),
// SERVER_STDOUT=file keeps its stdout.
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createStore } from '../src/index.js';
import { spinMigrations } from '../examples/spin/src/schema.js';
import { SpinStore } from '../examples/spin/src/store.js';
import { describeMachine, percentile, sleep, knob, writeResult } from './lib.js';
import type { HolderMessage } from './spin-streams.js';

const USERS = knob('USERS', 10_000, 200);
const JOIN_RATE = knob('JOIN_RATE', 2_000, 200);
const MATCHES = knob('MATCHES', 1_000, 20);
const WOMEN_RATE = knob('WOMEN_RATE', 200, 50);
/** Between the last stream opened and the first join, ms. */
const SETTLE_MS = 2_000;

/** The node flags `npm start` runs the server with (package.json's start script). */
const START_NODE_FLAGS = ['--max-semi-space-size=32'];
const dir = mkdtempSync(path.join(tmpdir(), 'spin-bench-'));
// Joins reuse a pool of kept-alive sockets; the streams are held by another process (spin-streams.ts).
const joinAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const holder = fork(path.join(import.meta.dirname, 'spin-streams.ts'), [], {
  execArgv: ['--import', 'tsx'],
  env: { PATH: process.env['PATH'] },
});

/** One request; resolves with the status and, unless `stream`, the whole body. */
function send(
  url: string,
  opts: { method?: string; headers?: http.OutgoingHttpHeaders; agent: http.Agent },
): Promise<{ status: number; body: string; response: http.IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent },
      (res) => {
        if (res.headers['content-type']?.startsWith('text/event-stream') === true) {
          resolve({ status: res.statusCode ?? 0, body: '', response: res });
          return;
        }
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, response: res }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

interface Client {
  token: string;
  matchedAt?: number;
  /** When the match event arrived (by the stream holder, on this machine's clock). */
  receivedAt?: number;
}

/** CPU time (user + system) the process has used, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks of 10 ms
}

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

/** When the server was spawned: TIMELINE=1 prints the phases on the server's clock (as --trace-gc's). */
let serverStartedAt = 0;
const phase = (name: string) =>
  process.env['TIMELINE'] === '1' &&
  process.stderr.write(
    `${name} at ${(performance.now() - serverStartedAt).toFixed(0)} ms of the server's life\n`,
  );

async function startServer(): Promise<{ child: ChildProcess; base: string }> {
  // SERVER_NODE_ARGS, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`, to see where the server's time goes.
  const nodeArgs = (process.env['SERVER_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  // With the node flags of `npm start` (package.json); SERVER_NODE_ARGS come after them, so they win.
  serverStartedAt = performance.now();
  const child = spawn(process.execPath, [...START_NODE_FLAGS, ...nodeArgs, 'dist/spin/server.js'], {
    env: {
      PATH: process.env['PATH'],
      BULWARK_DATA_DIR: dir,
      PORT: '0',
      LOG_LEVEL: 'warn',
      // 10,000 streams and the joins' connections: more than the default 10,000.
      BULWARK_MAX_CONNECTIONS: String(USERS + MATCHES + 2_000),
      // SPIN_WARMUP_JOINS=0 starts the server cold, to see what its warm-up buys.
      ...(process.env['SPIN_WARMUP_JOINS'] === undefined
        ? {}
        : { SPIN_WARMUP_JOINS: process.env['SPIN_WARMUP_JOINS'] }),
    },
    stdio: [
      'ignore',
      process.env['SERVER_STDOUT'] === undefined ? 'ignore' : openSync(process.env['SERVER_STDOUT'], 'w'),
      'pipe',
    ],
  });
  const base = await new Promise<string>((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      err += chunk.toString();
      const match = /spin listening on (http:\/\/\S+)/.exec(err);
      if (match !== null) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the server exited ${code}: ${err}`)));
  });
  return { child, base };
}

/** Joins `clients` at `perSecond`, in ticks of 10 ms; resolves each join's latency (ms) and the failures. */
async function joinAt(base: string, clients: Client[], perSecond: number) {
  const latencies: number[] = [];
  const sentAt: number[] = [];
  let failed = 0;
  /** Why joins failed: `status <code>: <body's code>` or the request error's message, with counts. */
  const failures = new Map<string, number>();
  const fail = (why: string) => {
    failed += 1;
    failures.set(why, (failures.get(why) ?? 0) + 1);
  };
  const perTick = perSecond / 100;
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < clients.length; i += 1) {
    const due = started + (i / perTick) * 10;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const client = clients[i]!;
    pending.push(
      (async () => {
        const t = performance.now();
        try {
          const res = await send(`${base}/api/queue/join`, {
            method: 'POST',
            agent: joinAgent,
            headers: { authorization: `Bearer ${client.token}`, 'idempotency-key': `join-${i}` },
          });
          if (res.status !== 200) fail(`status ${res.status}: ${res.body.slice(0, 300)}`);
          else {
            latencies.push(performance.now() - t);
            sentAt.push(t - started);
          }
        } catch (error) {
          fail((error as Error).message);
        }
      })(),
    );
  }
  await Promise.all(pending);
  // TIMELINE=1: the latencies of each half second (TIMELINE_MS=100: of each 100 ms), to see when a
  // slow stretch happened.
  const STEP = Number(process.env['TIMELINE_MS'] ?? 500);
  for (let from = 0; process.env['TIMELINE'] === '1' && from < performance.now() - started; from += STEP) {
    const window = latencies.filter((_, i) => sentAt[i]! >= from && sentAt[i]! < from + STEP);
    if (window.length > 0)
      process.stderr.write(
        `  ${(from / 1000).toFixed(2)} s: ${window.length} joins, p50 ${f(percentile(window, 50))} / p99 ${f(percentile(window, 99))} / max ${f(Math.max(...window))} ms\n`,
      );
  }
  for (const [why, count] of failures) process.stderr.write(`  failed ×${count}: ${why}\n`);
  const seconds = (performance.now() - started) / 1000;
  const steady = latencies.filter((_, i) => sentAt[i]! >= 1000);
  return {
    latencies,
    steady,
    failed,
    failures: Object.fromEntries(failures),
    achieved: clients.length / seconds,
  };
}

const f = (ms: number) => ms.toFixed(1);

try {
  const start = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } }).scripts
    .start;
  if (!START_NODE_FLAGS.every((flag) => start.includes(` ${flag} `)))
    throw new Error(`START_NODE_FLAGS (${START_NODE_FLAGS.join(' ')}) are not those of npm start: ${start}`);
  const built = spawnSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('npm run build failed');
  console.log(describeMachine(['fastify']));
  // Users are made in the store before the server starts (sign-up is rate limited per address).
  const store = await createStore({ dataDir: dir, migrations: async (engine) => spinMigrations(engine) });
  const spinStore = new SpinStore(store);
  const men: Client[] = [];
  const women: Client[] = [];
  for (let i = 0; i < USERS + MATCHES; i += 1) {
    const woman = i >= USERS;
    const { token } = await spinStore.createUser({
      displayName: `${woman ? 'woman' : 'man'} ${i}`,
      gender: woman ? 'woman' : 'man',
      seeking: [woman ? 'man' : 'woman'],
    });
    (woman ? women : men).push({ token });
    if (i % 2000 === 1999) process.stderr.write(`users made: ${i + 1}\n`);
  }
  await store.close();

  const { child, base } = await startServer();
  const startMs = performance.now() - serverStartedAt;
  try {
    const idle = rssKiB(child.pid!);
    // STREAMS=0 joins without live streams open (to tell the streams' cost from the joins').
    const everyone = [...men, ...women];
    if (process.env['STREAMS'] !== '0') {
      holder.on('message', (message: HolderMessage) => {
        if (message.type === 'progress') process.stderr.write(`streams open: ${message.open}\n`);
        if (message.type !== 'match') return;
        everyone[message.index]!.matchedAt = message.matchedAt;
        everyone[message.index]!.receivedAt = message.receivedAt;
      });
      const opened = new Promise<void>((resolve, reject) => {
        holder.on('message', (message: HolderMessage) => message.type === 'open' && resolve());
        holder.once('exit', (code) => reject(new Error(`the stream holder exited ${code}`)));
      });
      phase('streams open');
      holder.send({ base, tokens: everyone.map((c) => c.token) });
      await opened;
      // The server finishes the streams' first messages (11,000 opened in ~4 s) before the joins.
      await sleep(SETTLE_MS);
    }
    const connected = rssKiB(child.pid!);

    const cpuBefore = cpuMs(child.pid!);
    const clientCpuBefore = process.cpuUsage();
    const clientDelay = monitorEventLoopDelay({ resolution: 1 });
    clientDelay.enable();
    phase('joins');
    const joins = await joinAt(base, men, JOIN_RATE);
    phase('joins done');
    clientDelay.disable();
    const cpuPerJoin = (cpuMs(child.pid!) - cpuBefore) / men.length;
    const clientCpu = process.cpuUsage(clientCpuBefore);
    const clientBusy = (clientCpu.user + clientCpu.system) / 1000 / (men.length / joins.achieved) / 1000;
    await sleep(2000);
    const waiting = rssKiB(child.pid!);
    phase('matching');
    const womenJoins = await joinAt(base, women, WOMEN_RATE);
    const deadline = Date.now() + 30_000;
    while (women.some((w) => w.receivedAt === undefined) && Date.now() < deadline) await sleep(100);
    const matched = [...men, ...women].filter((c) => c.receivedAt !== undefined);
    const delays = matched.map((c) => c.receivedAt! - c.matchedAt!);
    const metrics = (await send(`${base}/metrics`, { agent: joinAgent })).body;
    const serverCount = Number(/^spin_match_event_seconds_count (\d+)/m.exec(metrics)?.[1] ?? 0);
    const serverUnder100 = Number(
      /^spin_match_event_seconds_bucket\{le="0.1"\} (\d+)/m.exec(metrics)?.[1] ?? 0,
    );

    const users = men.length + women.length;
    const md = [
      `${men.length.toLocaleString()} men waiting, ${women.length.toLocaleString()} women, one stream each; ` +
        `one run of the bundle as \`npm start\` runs it, the load client on the same machine.`,
      '',
      '| measure | figure | target |',
      '| --- | --- | --- |',
    ];
    md.push(`| server start: spawn to listening, warm-up included | ${startMs.toFixed(0)} ms | |`);
    md.push(`| streams open at once | ${users.toLocaleString()} | 10,000 |`);
    md.push(
      `| joins sent / achieved rate | ${men.length.toLocaleString()} at ${JOIN_RATE}/s asked, ${joins.achieved.toFixed(0)}/s achieved | 2,000/s |`,
    );
    md.push(
      `| join latency p50 / p99 / max | ${f(percentile(joins.latencies, 50))} / ${f(percentile(joins.latencies, 99))} / ${f(Math.max(...joins.latencies))} ms | p99 < 20 ms |`,
    );
    md.push(
      `| join latency p50 / p99 after the first second (the server's join path warm) | ${f(percentile(joins.steady, 50))} / ${f(percentile(joins.steady, 99))} ms | |`,
    );
    md.push(`| server CPU per join (streams' updates included) | ${cpuPerJoin.toFixed(2)} ms | |`);
    // The client shares the machine: if it is busy, its own delays are in the latencies it measures.
    md.push(
      `| load client: CPU busy / event-loop delay p99 / max during the joins | ${(clientBusy * 100).toFixed(0)}% of a core / ${(clientDelay.percentile(99) / 1e6).toFixed(1)} / ${(clientDelay.max / 1e6).toFixed(1)} ms | |`,
    );
    md.push(`| failed joins | ${joins.failed + womenJoins.failed} | 0 |`);
    md.push(
      `| join latency p50 / p99 while matching (${WOMEN_RATE}/s joining, each matched) | ${f(percentile(womenJoins.latencies, 50))} / ${f(percentile(womenJoins.latencies, 99))} ms | |`,
    );
    md.push(
      `| match-to-event p50 / p99 / max (client) | ${f(percentile(delays, 50))} / ${f(percentile(delays, 99))} / ${f(Math.max(...delays))} ms, ${delays.length} events | p99 < 100 ms |`,
    );
    md.push(`| match events ≤ 100 ms (server histogram) | ${serverUnder100} of ${serverCount} | |`);
    md.push(
      `| server RSS idle / streams open / all waiting | ${(idle / 1024).toFixed(0)} / ${(connected / 1024).toFixed(0)} / ${(waiting / 1024).toFixed(0)} MiB | |`,
    );
    md.push(`| RSS per connected user | ${((connected - idle) / users).toFixed(1)} KiB | |`);
    const markdown = md.join('\n');
    console.log(`\n${markdown}`);
    writeResult(
      {
        benchmark: 'spin',
        packages: ['fastify'],
        settings: { users: USERS, joinRate: JOIN_RATE, matches: MATCHES, womenRate: WOMEN_RATE },
        markdown,
        data: {
          joins: {
            sent: men.length,
            achievedPerSec: joins.achieved,
            failed: joins.failed,
            failures: joins.failures,
            p50Ms: percentile(joins.latencies, 50),
            p99Ms: percentile(joins.latencies, 99),
            maxMs: Math.max(...joins.latencies),
            steadyP50Ms: percentile(joins.steady, 50),
            steadyP99Ms: percentile(joins.steady, 99),
          },
          startMs,
          matchingJoins: {
            sent: women.length,
            failed: womenJoins.failed,
            failures: womenJoins.failures,
            p50Ms: percentile(womenJoins.latencies, 50),
            p99Ms: percentile(womenJoins.latencies, 99),
          },
          matchToEvent: {
            events: delays.length,
            p50Ms: percentile(delays, 50),
            p99Ms: percentile(delays, 99),
            maxMs: Math.max(...delays),
            serverUnder100: serverUnder100,
            serverCount,
          },
          serverCpuPerJoinMs: cpuPerJoin,
          client: {
            busy: clientBusy,
            loopDelayP99Ms: clientDelay.percentile(99) / 1e6,
            loopDelayMaxMs: clientDelay.max / 1e6,
          },
          rssKiB: { idle, connected, waiting },
        },
      },
      ['USERS', 'JOIN_RATE', 'MATCHES', 'WOMEN_RATE', 'STREAMS', 'SPIN_WARMUP_JOINS'],
    );
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
} finally {
  holder.disconnect();
  joinAgent.destroy();
  rmSync(dir, { recursive: true, force: true });
}

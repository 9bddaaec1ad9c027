// Supervisors compared on the same app (bench/fixtures/supervisor-app.js, node:http answering 200
// `ok`), in the same run:
//
// 1. Recovery after a crash: the time from `kill -9` of the app's pid to the first HTTP 200 on its
//    port (a fresh connection every ~1.5 ms), for (a) a plain respawn loop (a tiny Node parent that
//    spawns the app again on 'exit', the floor), (b) PM2 (fork mode, autorestart, restart delay 0)
//    and (c) `bulwark supervise` in direct mode (on its shared socket, the default). One unmeasured
//    kill each, then KILLS rounds rotating the order; medians and the ratio to the plain loop. Each app has
//    been up ≥ 1.1 s when it dies (a one-off crash, not a crash loop: PM2 calls a restart after < 1 s
//    up unstable), and Bulwark runs with `--stable-ms 1000` so that its restart streak (its backoff)
//    resets on the same terms; `--max-restarts 1000` keeps its restart budget out of the way.
// 2. Cluster mode, 2 processes on one port: the app directly (1 process, the reference), PM2's cluster
//    mode (`pm2 start -i 2`), `bulwark supervise --instances 2` on the shared socket (the default),
//    with `--balance round-robin` and with `--balance proxy`. Throughput and p99 with autocannon -c 100 for THROUGHPUT_S seconds,
//    ROUNDS rounds rotating the order (medians, spread, ratios to the app and to PM2), with the CPU
//    time per request of every process of the row (read from /proc: the supervisor or PM2's daemon
//    and the app processes; unlike req/s it does not depend on how the 2 cores are shared with
//    autocannon); then per row
//    LOAD_S seconds of load with `kill -9` of one process halfway (failed requests, and refused
//    connections among them), and again with a reload halfway (`pm2 reload`, `bulwark supervise
//    reload`). The result goes to bench/results/supervisor.json.
//
// BENCH_SMOKE=1: one round, 1–2 s phases, one kill, no result file (CI: it still runs).
// `npx tsx bench/supervisor.ts --only plain,pm2` runs a subset (plain, pm2, bulwark, cluster); KILLS,
// LOAD_S and THROUGHPUT_S (env) change the counts and durations. Needs `npm run build` for Bulwark.
// Progress goes to stderr, the tables to stdout. Every process started is stopped on the way out,
// failure included (process groups, PM2's daemon, the supervisors' app pids).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { OutputRing } from '../src/supervisor/logs.js';
import { freePort } from '../test/helpers/process.js';
import { cpuSeconds, describeMachine, Latencies, median, processTree, sleep, writeResult } from './lib.js';

// BENCH_SMOKE=1: one round of everything with 1–2 s phases and no result file (CI checks it runs).
const SMOKE = process.env['BENCH_SMOKE'] === '1';
const KILLS = SMOKE ? 1 : Number(process.env['KILLS'] ?? 15);
const LOAD_S = SMOKE ? 2 : Number(process.env['LOAD_S'] ?? 8);
const THROUGHPUT_S = SMOKE ? 1 : Number(process.env['THROUGHPUT_S'] ?? 5);
const ROUNDS = SMOKE ? 1 : Number(process.env['ROUNDS'] ?? 5);
const CONNECTIONS = 100;
const MIN_UPTIME_MS = 1100;
// The app is killed after MIN_UPTIME_MS up, so the streak resets after 1 s (PM2's min_uptime), not
// the default 10 s; and the restart budget is out of the way of KILLS.
const BULWARK_DIRECT = ['--stable-ms', '1000', '--max-restarts', '1000'];
const BUDGET_MS = 480_000;
const APP = 'bench/fixtures/supervisor-app.js';
const BULWARK = 'bin/bulwark.js';
const PM2 = 'node_modules/.bin/pm2';

const SUBJECTS = ['plain', 'pm2', 'bulwark', 'cluster'] as const;
type Part = (typeof SUBJECTS)[number];
type Recovering = Exclude<Part, 'cluster'>;

const fmt = (n: number) => Math.round(n).toLocaleString('en');
const started = performance.now();
function progress(text: string): void {
  console.error(`[${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${text}`);
}

function parseOnly(argv: string[]): Set<Part> {
  const at = argv.indexOf('--only');
  const value = at === -1 ? undefined : argv[at + 1];
  if (value === undefined) return new Set(SUBJECTS);
  const parts = value.split(',').map((p) => p.trim());
  for (const part of parts)
    if (!(SUBJECTS as readonly string[]).includes(part))
      throw new Error(`--only: unknown part "${part}" (one of ${SUBJECTS.join(', ')})`);
  return new Set(parts as Part[]);
}

// ---------------------------------------------------------------------------------------------
// Processes and cleanup

const cleanups: { name: string; run: () => Promise<void> }[] = [];
const warnings: string[] = [];

async function cleanupAll(): Promise<void> {
  for (let next = cleanups.pop(); next !== undefined; next = cleanups.pop()) {
    try {
      await next.run();
    } catch (error) {
      console.error(`cleanup of ${next.name} failed: ${(error as Error).message}`);
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** Resolves with the exit code (or -1 on a signal) and the output of a short command. */
function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 30_000,
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/**
 * Spawns a long-running command in its own process group, its output kept in a ring for the error
 * report; stopping sends SIGTERM to the leader, waits for it up to `graceMs`, runs `beforeKill`, then
 * SIGKILLs the whole group.
 */
function spawnGroup(
  name: string,
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  graceMs: number,
  beforeKill: () => Promise<void> = async () => undefined,
): { child: ChildProcess; output: OutputRing; stop: () => Promise<void> } {
  const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const output = new OutputRing(64 * 1024);
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: could not spawn ${file}`);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      signal(pid, 'SIGTERM');
      await Promise.race([exited, sleep(graceMs)]);
    }
    await beforeKill();
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // The group is empty.
    }
  };
  cleanups.push({ name, run: stop });
  return { child, output, stop };
}

// ---------------------------------------------------------------------------------------------
// HTTP

interface Answer {
  status: number;
  /** `x-pid` of the answering app (0 if absent). */
  pid: number;
  /** performance.now() when the response head arrived. */
  at: number;
}

/** One GET / over a fresh connection; undefined on any error. */
function probe(port: number): Promise<Answer | undefined> {
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (response) => {
      const at = performance.now();
      const answer = { status: response.statusCode ?? 0, pid: Number(response.headers['x-pid'] ?? 0), at };
      response.resume();
      response.once('end', () => resolve(answer));
      response.once('error', () => resolve(undefined));
    });
    request.setTimeout(1000, () => request.destroy());
    request.once('error', () => resolve(undefined));
  });
}

/** Polls until a 200 from an app other than `not`; a fresh connection every ~1–2 ms. */
async function waitUp(port: number, not: number | undefined, timeoutMs: number): Promise<Answer> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const answer = await probe(port);
    if (answer !== undefined && answer.status === 200 && answer.pid !== not) return answer;
    if (performance.now() > deadline) throw new Error(`port ${port}: no 200 within ${timeoutMs} ms`);
    await sleep(1);
  }
}

// ---------------------------------------------------------------------------------------------
// The supervisors

interface Supervised {
  name: string;
  port: number;
  /** The app's pid as the supervisor tells it, once that names a live process other than `not`. */
  appPid(not: number | undefined): Promise<number>;
  /** Recent output, for the error report. */
  output(): string[];
}

/** Polls `read` until it yields a live pid other than `not`. */
async function livePid(
  what: string,
  read: () => Promise<number | undefined>,
  not: number | undefined,
  timeoutMs = 10_000,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const pid = await read();
    if (pid !== undefined && pid > 0 && pid !== not && alive(pid)) return pid;
    if (performance.now() > deadline) throw new Error(`${what}: no live app pid within ${timeoutMs} ms`);
    await sleep(20);
  }
}

// The floor: respawn at once on exit, print each child's pid.
const LOOP = `
const { spawn } = require('node:child_process');
const [app] = process.argv.slice(1);
function start() {
  const child = spawn(process.execPath, [app], { stdio: ['ignore', 'ignore', 'inherit'] });
  process.stdout.write('pid ' + child.pid + '\\n');
  child.on('exit', start);
}
start();
`;

async function startPlain(port: number): Promise<Supervised> {
  const { child, output } = spawnGroup(
    'plain respawn loop',
    process.execPath,
    ['-e', LOOP, APP],
    { ...process.env, PORT: String(port) },
    0,
  );
  let latest: number | undefined;
  if (child.stdout === null) throw new Error('plain loop: no stdout');
  createInterface({ input: child.stdout }).on('line', (line) => {
    const match = /^pid (\d+)$/.exec(line);
    if (match?.[1] !== undefined) latest = Number(match[1]);
  });
  await waitUp(port, undefined, 10_000);
  return {
    name: 'plain',
    port,
    appPid: (not) => livePid('plain loop', async () => latest, not),
    output: () => output.lines(20),
  };
}

interface Pm2Process {
  pid?: number;
  pm2_env?: { status?: string; restart_time?: number };
}

async function startPm2(port: number): Promise<Supervised> {
  const home = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-pm2-'));
  const env = { ...process.env, PM2_HOME: home, PORT: String(port) };
  let lastPid: number | undefined;
  cleanups.push({
    name: 'pm2',
    run: async () => {
      const killed = await run(PM2, ['kill'], env, 15_000);
      if (killed.code !== 0) progress(`pm2 kill exited ${killed.code}: ${killed.stderr.trim()}`);
      const pidFile = path.join(home, 'pm2.pid');
      if (existsSync(pidFile)) signal(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
      if (lastPid !== undefined) signal(lastPid, 'SIGKILL');
      rmSync(home, { recursive: true, force: true });
    },
  });
  const started = await run(PM2, ['start', APP, '--name', 'bench-app', '--restart-delay', '0'], env);
  if (started.code !== 0) throw new Error(`pm2 start exited ${started.code}: ${started.stderr}`);
  let last = '';
  const read = async () => {
    const list = await run(PM2, ['jlist'], env);
    last = list.stdout + list.stderr;
    const json = list.stdout.slice(list.stdout.indexOf('['));
    try {
      const apps = JSON.parse(json) as Pm2Process[];
      const app = apps[0];
      return app?.pm2_env?.status === 'online' ? app.pid : undefined;
    } catch {
      return undefined;
    }
  };
  await waitUp(port, undefined, 15_000);
  return {
    name: 'pm2',
    port,
    appPid: async (not) => {
      lastPid = await livePid('pm2 jlist', read, not);
      return lastPid;
    },
    output: () => last.split('\n').slice(-20),
  };
}

interface SupervisorState {
  instances?: { pid?: number; port?: number }[];
}

function readState(stateDir: string): SupervisorState | undefined {
  try {
    return JSON.parse(readFileSync(path.join(stateDir, 'state.json'), 'utf8')) as SupervisorState;
  } catch {
    return undefined; // absent, or caught mid-write
  }
}

async function startBulwark(
  name: string,
  port: number,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<Supervised & { stateDir: string; pid: number; stop: () => Promise<void> }> {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-supervise-'));
  const mine = new Set<number>();
  const collect = () => {
    for (const instance of readState(stateDir)?.instances ?? [])
      if (instance.pid !== undefined && instance.pid > 0) mine.add(instance.pid);
  };
  // After the supervisor's graceful stop, its apps must be gone too: anything left is reported.
  const leftovers = async () => {
    collect();
    const deadline = performance.now() + 2000;
    while ([...mine].some(alive) && performance.now() < deadline) await sleep(20);
    const left = [...mine].filter(alive);
    if (left.length > 0) {
      warnings.push(`${name}: app pids ${left.join(', ')} still alive after the supervisor's SIGTERM stop`);
      for (const pid of left) signal(pid, 'SIGKILL');
    }
  };
  const { child, output, stop } = spawnGroup(
    name,
    process.execPath,
    [BULWARK, 'supervise', '--state-dir', stateDir, ...args, '--', 'node', APP],
    env,
    10_000,
    leftovers,
  );
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk));
  const supervisorPid = child.pid ?? 0;
  const spawnedAt = performance.now();
  cleanups.push({
    name: `${name} state dir`,
    run: async () => rmSync(stateDir, { recursive: true, force: true }),
  });
  let warnedFallback = false;
  const read = async (): Promise<number | undefined> => {
    const state = readState(stateDir);
    const pid = state?.instances?.[0]?.pid;
    if (pid !== undefined) {
      mine.add(pid);
      return pid;
    }
    // state.json is written shortly after the start: give it that time before falling back.
    if (state === undefined && performance.now() - spawnedAt < 3000) return undefined;
    const children = await run('pgrep', ['-P', String(supervisorPid)], process.env);
    const first = Number(children.stdout.trim().split('\n')[0] ?? '');
    if (first > 0) mine.add(first);
    if (!warnedFallback && state === undefined && first > 0) {
      warnedFallback = true;
      warnings.push(`${name}: no ${stateDir}/state.json with instances[0].pid; used pgrep -P instead`);
    }
    return first > 0 ? first : undefined;
  };
  const exited = new Promise<never>((_resolve, reject) =>
    child.once('exit', (code, sig) =>
      reject(
        new Error(`${name} exited (${code ?? sig}) before it answered:\n${output.lines(30).join('\n')}`),
      ),
    ),
  );
  exited.catch(() => undefined);
  await Promise.race([waitUp(port, undefined, 20_000), exited]);
  return {
    name,
    port,
    stateDir,
    pid: supervisorPid,
    stop,
    appPid: (not) => livePid(name, read, not),
    output: () => output.lines(30),
  };
}

// ---------------------------------------------------------------------------------------------
// Metric 1: kill -9 → first 200

interface Kill {
  ms: number;
  killed: number;
  answeredBy: number;
}

async function killOnce(subject: Supervised, previous: number | undefined, upSince: number): Promise<Kill> {
  let pid = await subject.appPid(previous);
  // Every app has been up a while when it dies: a one-off crash, not a crash loop (PM2 counts a
  // restart after less than 1 s up as unstable; Bulwark's streak resets after --stable-ms).
  await sleep(upSince + MIN_UPTIME_MS - performance.now());
  const before = await waitUp(subject.port, undefined, 5000);
  if (before.pid !== pid) {
    warnings.push(
      `${subject.name}: the pid it reports (${pid}) is not the one answering on the port (${before.pid}); killed the latter`,
    );
    pid = before.pid;
  }
  const t0 = performance.now();
  process.kill(pid, 'SIGKILL');
  const answer = await waitUp(subject.port, pid, 15_000);
  return { ms: answer.at - t0, killed: pid, answeredBy: answer.pid };
}

async function recovery(parts: Set<Part>): Promise<Map<Recovering, number[]>> {
  const subjects: Supervised[] = [];
  const order = (['plain', 'pm2', 'bulwark'] as const).filter((p) => parts.has(p));
  for (const which of order) {
    const port = await freePort();
    progress(`starting ${which} on port ${port}`);
    if (which === 'plain') subjects.push(await startPlain(port));
    else if (which === 'pm2') subjects.push(await startPm2(port));
    else
      subjects.push(
        await startBulwark('bulwark', port, BULWARK_DIRECT, { ...process.env, PORT: String(port) }),
      );
  }
  const results = new Map<Recovering, number[]>(order.map((name) => [name, []]));
  const last = new Map<string, { pid: number; upSince: number }>();
  const once = async (subject: Supervised, round: number) => {
    try {
      const before = last.get(subject.name);
      const kill = await killOnce(subject, before?.pid, before?.upSince ?? 0);
      last.set(subject.name, { pid: kill.killed, upSince: performance.now() });
      progress(
        `${round === 0 ? 'warm-up' : `round ${round}`} ${subject.name.padEnd(8)} killed ${kill.killed}, ` +
          `200 from ${kill.answeredBy} after ${kill.ms.toFixed(1)} ms`,
      );
      return kill.ms;
    } catch (error) {
      throw new Error(`${subject.name}: ${(error as Error).message}\n${subject.output().join('\n')}`, {
        cause: error,
      });
    }
  };
  for (const subject of subjects) await once(subject, 0);
  for (let round = 1; round <= KILLS; round += 1) {
    const turn = [...subjects];
    // Rotate the order each round so no subject always goes first.
    for (let k = 0; k < (round - 1) % turn.length; k += 1) turn.push(turn.shift() as Supervised);
    for (const subject of turn) results.get(subject.name as Recovering)?.push(await once(subject, round));
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// Metric 2: cluster mode under load

interface Loaded {
  result: autocannon.Result;
  /** p99 of the per-request times, ms at µs resolution. */
  p99Ms: number;
  failures: Map<string, number>;
  event: string;
}

/** autocannon -c 100 for `seconds` on `port`, running `action` after `atMs`. */
async function load(
  port: number,
  seconds: number,
  atMs: number | undefined,
  action: () => Promise<string>,
): Promise<Loaded> {
  const failures = new Map<string, number>();
  const count = (what: string) => failures.set(what, (failures.get(what) ?? 0) + 1);
  const latencies = new Latencies();
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      { url: `http://127.0.0.1:${port}/`, connections: CONNECTIONS, duration: seconds },
      (error, result) => (error ? reject(error as Error) : resolve(result)),
    );
    instance.on('response', (_client, status: number, _bytes: number, ms: number) => {
      latencies.push(ms);
      if (status < 200 || status >= 300) count(`HTTP ${status}`);
    });
    instance.on('reqError', (error: NodeJS.ErrnoException) => count(error.code ?? error.message));
  });
  let event = '';
  if (atMs !== undefined) {
    await sleep(atMs);
    // A failed action is reported in the table; the load still runs to its end.
    event = await action().catch((error: Error) => `FAILED: ${error.message}`);
  }
  return { result: await done, p99Ms: latencies.percentile(99), failures, event };
}

/** Waits until the state lists `n` live instances, none of them in `not`. */
async function instancesUp(stateDir: string, n: number, not: number[], timeoutMs: number): Promise<number[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const pids = (readState(stateDir)?.instances ?? []).map((i) => i.pid ?? 0);
    if (pids.length === n && pids.every((pid) => pid > 0 && alive(pid) && !not.includes(pid))) return pids;
    if (performance.now() > deadline)
      throw new Error(
        `${stateDir}/state.json: not ${n} live instances within ${timeoutMs} ms (${pids.join(', ')})`,
      );
    await sleep(10);
  }
}

/** One way of running the app on one port, measured by {@link cluster}. */
interface Row {
  name: string;
  port: number;
  /** The process serving the row and every process it started: whose CPU is counted. */
  root: () => number;
  /** kill -9 of one app process (undefined: nothing would restart it). */
  kill?: () => Promise<string>;
  reload?: () => Promise<string>;
  stop: () => Promise<void>;
}

/** Per row: throughput and p99 per round, and what clients saw through a kill and a reload. */
interface RowResult {
  name: string;
  reqPerSec: number[];
  p99Ms: number[];
  /** CPU µs per request of the row's processes (the supervisor or PM2's daemon included). */
  cpuUsPerRequest: number[];
  kill?: Loaded;
  reload?: Loaded;
}

type ClusterResults = RowResult[];

async function pm2Cluster(port: number, env: NodeJS.ProcessEnv): Promise<Row> {
  const home = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-pm2c-'));
  const pm2Env = { ...env, PM2_HOME: home, PORT: String(port) };
  const pids = new Set<number>();
  const stop = async () => {
    await run(PM2, ['kill'], pm2Env, 15_000);
    const pidFile = path.join(home, 'pm2.pid');
    if (existsSync(pidFile)) signal(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    for (const pid of pids) signal(pid, 'SIGKILL');
    rmSync(home, { recursive: true, force: true });
  };
  cleanups.push({ name: 'pm2 cluster', run: stop });
  const started = await run(PM2, ['start', APP, '-i', '2', '--name', 'bench-cluster'], pm2Env);
  if (started.code !== 0) throw new Error(`pm2 start -i 2 exited ${started.code}: ${started.stderr}`);
  const online = async (): Promise<number[]> => {
    const list = await run(PM2, ['jlist'], pm2Env);
    try {
      const apps = JSON.parse(list.stdout.slice(list.stdout.indexOf('['))) as Pm2Process[];
      const up = apps.filter((a) => a.pm2_env?.status === 'online' && a.pid !== undefined && alive(a.pid));
      for (const app of up) pids.add(app.pid ?? 0);
      return up.map((a) => a.pid ?? 0);
    } catch {
      return [];
    }
  };
  const twoUp = async (not: number[]) => {
    const deadline = performance.now() + 20_000;
    for (;;) {
      const up = (await online()).filter((pid) => !not.includes(pid));
      if (up.length === 2) return up;
      if (performance.now() > deadline) throw new Error('pm2 cluster: not 2 workers online within 20 s');
      await sleep(50);
    }
  };
  await twoUp([]);
  await waitUp(port, undefined, 15_000);
  return {
    name: 'PM2 cluster mode, 2 workers',
    port,
    // PM2's daemon: it forks the workers.
    root: () => Number(readFileSync(path.join(home, 'pm2.pid'), 'utf8')),
    kill: async () => {
      const [victim] = await twoUp([]);
      const t0 = performance.now();
      signal(victim ?? 0, 'SIGKILL');
      await twoUp([victim ?? 0]);
      return `killed ${victim}; 2 workers online again after ${(performance.now() - t0).toFixed(0)} ms`;
    },
    reload: async () => {
      const r = await run(PM2, ['reload', 'bench-cluster'], pm2Env, 60_000);
      return `pm2 reload exited ${r.code} after ${r.ms.toFixed(0)} ms`;
    },
    stop,
  };
}

async function bulwarkCluster(
  name: string,
  port: number,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<Row> {
  const two = await startBulwark(name, port, ['--instances', '2', '--port', String(port), ...args], env);
  await instancesUp(two.stateDir, 2, [], 20_000);
  return {
    name,
    port,
    root: () => two.pid,
    kill: async () => {
      const victim = readState(two.stateDir)?.instances?.[0]?.pid;
      if (victim === undefined) return 'no instances[0].pid in state.json: nothing killed';
      const t0 = performance.now();
      signal(victim, 'SIGKILL');
      // The load goes on meanwhile; state.json is rewritten shortly after each change.
      await instancesUp(two.stateDir, 2, [victim], 20_000);
      return `killed ${victim}; a replacement in state.json after ${(performance.now() - t0).toFixed(0)} ms`;
    },
    reload: async () => {
      const r = await run(
        process.execPath,
        [BULWARK, 'supervise', 'reload', '--state-dir', two.stateDir],
        env,
        60_000,
      );
      const said = (r.stdout + r.stderr).trim().split('\n').slice(-1).join(' / ');
      await instancesUp(two.stateDir, 2, [], 20_000);
      return `reload exited ${r.code} after ${r.ms.toFixed(0)} ms${said === '' ? '' : `: ${said}`}`;
    },
    stop: two.stop,
  };
}

/**
 * The app directly, PM2's cluster mode, Bulwark's shared socket and Bulwark's proxy (2 processes
 * each): throughput and p99 in ROUNDS rounds rotating the order, then per row a kill -9 and a reload
 * halfway through LOAD_S seconds of load.
 */
async function cluster(): Promise<ClusterResults> {
  const env = { ...process.env };
  delete env['PORT'];
  const direct = await freePort();
  const app = spawnGroup('app directly', process.execPath, [APP], { ...env, PORT: String(direct) }, 0);
  await waitUp(direct, undefined, 10_000);
  const rows: Row[] = [
    { name: 'the app directly (1 process)', port: direct, root: () => app.child.pid ?? 0, stop: app.stop },
  ];
  progress('starting PM2 cluster mode (-i 2)');
  rows.push(await pm2Cluster(await freePort(), env));
  const balances: [label: string, args: string[]][] = [
    ['(socket)', []],
    ['--balance round-robin', ['--balance', 'round-robin']],
    ['--balance proxy', ['--balance', 'proxy']],
  ];
  for (const [label, args] of balances) {
    progress(`starting bulwark supervise --instances 2 ${label}`);
    rows.push(await bulwarkCluster(`bulwark --instances 2 ${label}`, await freePort(), args, env));
  }
  const results: RowResult[] = rows.map((row) => ({
    name: row.name,
    reqPerSec: [],
    p99Ms: [],
    cpuUsPerRequest: [],
  }));
  for (const row of rows) await load(row.port, 1, undefined, async () => ''); // warm-up
  for (let round = 1; round <= ROUNDS; round += 1) {
    const turn = rows.map((row, i) => ({ row, result: results[i] as RowResult }));
    for (let k = 0; k < (round - 1) % turn.length; k += 1) turn.push(turn.shift() as (typeof turn)[number]);
    for (const { row, result } of turn) {
      // CPU time does not depend on how the two cores are shared with the load generator.
      const tree = processTree(row.root());
      const cpuBefore = tree.map(cpuSeconds);
      const { result: r, p99Ms } = await load(row.port, THROUGHPUT_S, undefined, async () => '');
      // A process gone meanwhile reads 0 now: its time in the round is left out, never subtracted.
      const cpu = tree.reduce((sum, pid, i) => sum + Math.max(0, cpuSeconds(pid) - (cpuBefore[i] ?? 0)), 0);
      const cpuUs = Math.round((cpu / Math.max(r.requests.total, 1)) * 1e8) / 100;
      result.reqPerSec.push(r.requests.average);
      result.p99Ms.push(Math.round(p99Ms * 1000) / 1000);
      result.cpuUsPerRequest.push(cpuUs);
      progress(
        `round ${round} ${row.name}: ${fmt(r.requests.average)} req/s, p99 ${p99Ms.toFixed(2)} ms, ` +
          `${cpuUs.toFixed(2)} CPU µs/request`,
      );
    }
  }
  for (const [i, row] of rows.entries()) {
    const result = results[i] as RowResult;
    if (row.kill !== undefined) {
      result.kill = await load(row.port, LOAD_S, (LOAD_S / 2) * 1000, row.kill);
      progress(`${row.name}: ${result.kill.event}; failed ${failedOf(result.kill)}`);
    }
    if (row.reload !== undefined) {
      result.reload = await load(row.port, LOAD_S, (LOAD_S / 2) * 1000, row.reload);
      progress(`${row.name}: ${result.reload.event}; failed ${failedOf(result.reload)}`);
    }
  }
  for (const row of rows) await row.stop();
  return results;
}

const failedOf = (r: Loaded) => r.result.non2xx + r.result.errors;
const refusedOf = (r: Loaded) => r.failures.get('ECONNREFUSED') ?? 0;

// ---------------------------------------------------------------------------------------------
// Reporting

const spread = (values: number[]) => ({
  median: median(values),
  min: Math.min(...values),
  max: Math.max(...values),
});

/** The cluster tables: throughput and p99, then kill -9 and reload under load. */
function clusterLines(rows: ClusterResults): string[] {
  const lines: string[] = [];
  const direct = median(rows[0]?.reqPerSec ?? []);
  const pm2 = rows.find((r) => r.name.startsWith('PM2'));
  const pm2Rps = median(pm2?.reqPerSec ?? []);
  const pm2P99 = median(pm2?.p99Ms ?? []);
  const pm2Cpu = median(pm2?.cpuUsPerRequest ?? []);
  lines.push('');
  lines.push(
    '| how it runs | req/s (median) | spread | p99 ms (median, from per-request times) | CPU µs per request (all its processes) | vs the app directly | vs PM2 cluster (req/s, p99, CPU) |',
  );
  lines.push('|---|---|---|---|---|---|---|');
  for (const row of rows) {
    const rps = spread(row.reqPerSec);
    const p99 = median(row.p99Ms);
    const cpu = spread(row.cpuUsPerRequest);
    const vsPm2 =
      row === pm2 || pm2 === undefined
        ? '—'
        : `${(rps.median / pm2Rps).toFixed(2)}×, ${(p99 / pm2P99).toFixed(2)}×, ${(cpu.median / pm2Cpu).toFixed(2)}×`;
    lines.push(
      `| ${row.name} | ${fmt(rps.median)} | ${fmt(rps.min)}–${fmt(rps.max)} | ${p99.toFixed(2)} | ${cpu.median.toFixed(2)} (${cpu.min.toFixed(2)}–${cpu.max.toFixed(2)}) | ${(rps.median / direct).toFixed(2)}× | ${vsPm2} |`,
    );
  }
  lines.push('');
  lines.push(
    '| how it runs | kill -9 of one process: failed / refused | reload: failed | failures by kind |',
  );
  lines.push('|---|---|---|---|');
  for (const row of rows) {
    if (row.kill === undefined && row.reload === undefined) continue;
    const kinds = (
      [
        ['kill', row.kill],
        ['reload', row.reload],
      ] as const
    )
      .flatMap(([what, r]) =>
        r === undefined ? [] : [...r.failures].map(([k, n]) => `${what}: ${k} × ${n}`),
      )
      .join(', ');
    const kill = row.kill === undefined ? '—' : `${failedOf(row.kill)} / ${refusedOf(row.kill)}`;
    const reload = row.reload === undefined ? '—' : String(failedOf(row.reload));
    lines.push(`| ${row.name} | ${kill} | ${reload} | ${kinds || '—'} |`);
  }
  return lines;
}

function resultJson(recovered: Map<Recovering, number[]>, rows: ClusterResults): Record<string, unknown> {
  const loaded = (r: Loaded | undefined) =>
    r === undefined
      ? undefined
      : {
          requests: r.result.requests.total,
          failed: failedOf(r),
          refused: refusedOf(r),
          failures: Object.fromEntries(r.failures),
          event: r.event,
        };
  return {
    setup: {
      connections: CONNECTIONS,
      throughputS: THROUGHPUT_S,
      rounds: ROUNDS,
      loadS: LOAD_S,
      kills: KILLS,
    },
    recovery: Object.fromEntries(
      [...recovered].map(([name, values]) => [name, { killToOkMs: spread(values), values }]),
    ),
    rows: rows.map((row) => ({
      name: row.name,
      reqPerSec: { ...spread(row.reqPerSec), rounds: row.reqPerSec },
      p99Ms: { ...spread(row.p99Ms), rounds: row.p99Ms },
      cpuUsPerRequest: { ...spread(row.cpuUsPerRequest), rounds: row.cpuUsPerRequest },
      kill: loaded(row.kill),
      reload: loaded(row.reload),
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// Main

const parts = parseOnly(process.argv.slice(2));
const watchdog = setTimeout(() => {
  progress(`over the ${BUDGET_MS / 1000} s budget: stopping everything`);
  void cleanupAll().finally(() => process.exit(1));
}, BUDGET_MS);
watchdog.unref();
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    progress(`${sig}: stopping everything`);
    void cleanupAll().finally(() => process.exit(130));
  });

console.log(describeMachine(['pm2', 'autocannon']));
if (parts.has('bulwark') || parts.has('cluster')) {
  const help = await run(process.execPath, [BULWARK, 'supervise', '--help'], process.env);
  if (help.code !== 0) {
    console.error(`node ${BULWARK} supervise --help exited ${help.code} (run npm run build first?):`);
    console.error(help.stderr.trim());
    process.exit(1);
  }
}
let recovered: Map<Recovering, number[]> | undefined;
let clustered: ClusterResults | undefined;
let failed = false;
try {
  if (parts.has('plain') || parts.has('pm2') || parts.has('bulwark')) {
    console.log(`recovery: ${KILLS} kills per supervisor after one unmeasured, rotating the order`);
    recovered = await recovery(parts);
    await cleanupAll();
  }
  if (parts.has('cluster')) {
    console.log(
      `cluster: autocannon -c ${CONNECTIONS}: throughput -d ${THROUGHPUT_S} × ${ROUNDS} rounds rotating the order; then -d ${LOAD_S} with kill -9 / reload at ${LOAD_S / 2} s`,
    );
    clustered = await cluster();
  }
} catch (error) {
  failed = true;
  console.error(`benchmark failed: ${(error as Error).message}`);
} finally {
  await cleanupAll();
}

const lines: string[] = [];
if (recovered !== undefined) {
  const plain = recovered.has('plain') ? median(recovered.get('plain') ?? []) : undefined;
  const labels: Record<Recovering, string> = {
    plain: 'plain respawn loop',
    pm2: 'PM2 (fork, restart delay 0)',
    bulwark: 'bulwark supervise (direct)',
  };
  lines.push('| supervisor | kills | median kill → 200 (ms) | min (ms) | max (ms) | vs plain loop |');
  lines.push('|---|---|---|---|---|---|');
  for (const [name, values] of recovered) {
    if (values.length === 0) continue;
    const m = median(values);
    const ratio = plain === undefined ? '—' : `${(m / plain).toFixed(2)}×`;
    lines.push(
      `| ${labels[name]} | ${values.length} | ${m.toFixed(1)} | ${Math.min(...values).toFixed(1)} | ${Math.max(...values).toFixed(1)} | ${ratio} |`,
    );
  }
  const bulwark = recovered.get('bulwark');
  if (plain !== undefined && bulwark !== undefined && bulwark.length > 0) {
    const ratio = median(bulwark) / plain;
    lines.push(
      '',
      `bulwark ${ratio.toFixed(2)}× the plain loop (target ≤ 1.1×: ${ratio <= 1.1 ? 'met' : 'NOT met'})`,
    );
  }
}
if (clustered !== undefined) lines.push(...clusterLines(clustered));
const markdown = lines.join('\n').trim();
console.log(`\n${markdown}`);
if (!SMOKE && !failed && recovered !== undefined && clustered !== undefined) {
  writeResult(
    {
      benchmark: 'supervisor',
      packages: ['pm2', 'autocannon'],
      settings: {
        connections: CONNECTIONS,
        throughputS: THROUGHPUT_S,
        rounds: ROUNDS,
        loadS: LOAD_S,
        kills: KILLS,
      },
      markdown,
      data: resultJson(recovered, clustered),
    },
    ['KILLS', 'LOAD_S', 'THROUGHPUT_S', 'ROUNDS'],
  );
}
if (warnings.length > 0) {
  console.log('\nwarnings:');
  for (const w of new Set(warnings)) console.log(`- ${w}`);
}
process.exit(failed ? 1 : 0);

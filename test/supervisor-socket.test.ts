// `--balance socket` (the default): the supervisor holds the listening socket and the app processes
// accept from it through the listen preload; `--balance round-robin`: the supervisor accepts on that
// socket and deals each connection to the next process over IPC. Both judged on real processes by
// what clients see: refused connections (ECONNREFUSED) through kill -9, failed requests (GET and
// POST) through reloads, and which pids answer. The app is a plain node:http app run with `node`: no
// Bulwark code in it.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnTs } from './helpers/process.js';
import {
  alive,
  runningPid,
  startSupervisor,
  stopSupervisors,
  type SupervisorRun,
  versionFile,
} from './helpers/supervisor.js';
import { until } from './helpers/wait.js';

afterEach(stopSupervisors);

const APP = ['node', 'test/fixtures/socket-app.cjs'];
const PROBES = ['--ready-path', '/', '--live-path', '/', '--probe-interval-ms', '200'];
const CLUSTER = ['--instances', '2', ...PROBES];
const TIMEOUT = { timeout: 180_000 };

async function superviseWith(
  args: string[],
  version = 'v1',
  env: NodeJS.ProcessEnv = {},
): Promise<{ run: SupervisorRun; file: string }> {
  const file = versionFile(version);
  const run = await startSupervisor(args, { command: APP, port: 0, env: { ...env, VERSION_FILE: file } });
  return { run, file };
}

interface Answer {
  pid: number;
  version: string;
  bytes: number;
}

/** One request: the parsed answer, or the error code (a status other than 200 is an error too). */
function request(
  port: number,
  agent: http.Agent | false,
  post: boolean,
): Promise<{ answer: Answer } | { error: string }> {
  return new Promise((resolve) => {
    const body = post ? 'x'.repeat(2048) : undefined;
    const req = http.request(
      { host: '127.0.0.1', port, path: '/', method: post ? 'POST' : 'GET', agent, timeout: 30_000 },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () =>
          resolve(
            response.statusCode === 200
              ? { answer: JSON.parse(text) as Answer }
              : { error: `status ${response.statusCode}` },
          ),
        );
        response.on('error', (error: NodeJS.ErrnoException) =>
          resolve({ error: error.code ?? error.message }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
    req.end(body);
  });
}

/**
 * Load until `stop()`: `concurrency` loops alternating GET and POST; `keepAlive: false` opens a new
 * connection per request (what a refused connection shows on). Counts answers by pid and version,
 * and errors by code.
 */
function traffic(port: number, { concurrency = 8, keepAlive = true } = {}) {
  const agent = keepAlive ? new http.Agent({ keepAlive: true, maxSockets: concurrency }) : false;
  const pids = new Map<number, number>();
  const versions = new Map<string, number>();
  const errors = new Map<string, number>();
  let ok = 0;
  let running = true;
  const loops = Array.from({ length: concurrency }, async (_, loop) => {
    for (let n = 0; running; n++) {
      const result = await request(port, agent, (n + loop) % 2 === 1);
      if ('answer' in result) {
        ok += 1;
        pids.set(result.answer.pid, (pids.get(result.answer.pid) ?? 0) + 1);
        versions.set(result.answer.version, (versions.get(result.answer.version) ?? 0) + 1);
      } else errors.set(result.error, (errors.get(result.error) ?? 0) + 1);
    }
  });
  return {
    ok: () => ok,
    pids,
    versions,
    errors,
    async stop() {
      running = false;
      await Promise.all(loops);
      if (agent !== false) agent.destroy();
    },
  };
}

/** Waits until `load` got `more` answers than it had (load flowed, across a fault). */
async function flowed(load: ReturnType<typeof traffic>, more = 200): Promise<void> {
  const from = load.ok();
  await until(() => load.ok() >= from + more, 90_000, `${more} more answers`);
}

async function reloadCli(stateDir: string): Promise<{ code: number | null; out: string }> {
  const cli = spawnTs('src/cli/main.ts', ['supervise', 'reload', '--state-dir', stateDir], {});
  const { code } = await cli.exited;
  return { code, out: cli.stdout() + cli.stderr() };
}

describe.each([
  ['socket (the default)', []],
  ['round-robin', ['--balance', 'round-robin']],
])('bulwark supervise --balance %s', TIMEOUT, (_, balance: string[]) => {
  const supervise = (args: string[], version?: string, env?: NodeJS.ProcessEnv) =>
    superviseWith([...balance, ...args], version, env);

  it('direct mode: a plain node:http app serves through the preload; kill -9 under load refuses no connection', async () => {
    const { run } = await supervise(PROBES);
    const victim = await runningPid(run);
    const load = traffic(run.port, { keepAlive: false });
    await flowed(load);
    expect([...load.pids.keys()]).toEqual([victim]);
    process.kill(victim, 'SIGKILL');
    const next = await runningPid(run, 0, victim);
    await until(() => load.pids.has(next), 60_000, 'the new process answering');
    await flowed(load);
    await load.stop();
    // Only requests inside the killed process can fail (reset); none is refused.
    expect(load.errors.get('ECONNREFUSED') ?? 0).toBe(0);
    expect([...load.errors.keys()].filter((code) => code !== 'ECONNRESET')).toEqual([]);
    const status = await run.status();
    expect(status.port).toBe(run.port);
    expect(status.crashes.at(-1)).toMatchObject({ reason: 'crash', signal: 'SIGKILL', pid: victim });
  });

  it('cluster mode: both processes accept from the one socket; kill -9 of one refuses no connection', async () => {
    const { run } = await supervise(CLUSTER);
    const pids = [await runningPid(run, 0), await runningPid(run, 1)];
    const load = traffic(run.port, { concurrency: 16, keepAlive: false });
    await until(() => pids.every((pid) => load.pids.has(pid)), 90_000, 'answers from both pids');
    process.kill(pids[0] ?? 0, 'SIGKILL');
    const next = await runningPid(run, 0, pids[0]);
    await until(() => load.pids.has(next), 90_000, 'the new process answering');
    await flowed(load);
    await load.stop();
    expect(load.errors.get('ECONNREFUSED') ?? 0).toBe(0);
    expect([...load.errors.keys()].filter((code) => code !== 'ECONNRESET')).toEqual([]);
    // No proxy: the answers come straight from the app processes.
    expect([...load.pids.keys()].sort()).toEqual([...pids, next].sort());
  });

  it.each([
    ['cluster', CLUSTER],
    ['direct', PROBES],
  ])('%s mode: a reload under keep-alive GET and POST load fails no request', async (_, args) => {
    const { run, file } = await supervise(args);
    const before = (await run.status()).instances.map((i) => i.pid ?? 0);
    const load = traffic(run.port);
    await flowed(load);
    writeFileSync(file, 'v2');
    const reload = await reloadCli(run.stateDir);
    expect(reload.code).toBe(0);
    expect(reload.out).toContain('reloaded in');
    await until(() => (load.versions.get('v2') ?? 0) >= 200, 90_000, '200 answers from v2');
    const v1 = load.versions.get('v1') ?? 0;
    for (const pid of before) await until(() => !alive(pid), 30_000, `old process ${pid} stopped`);
    await flowed(load);
    await load.stop();
    expect(Object.fromEntries(load.errors)).toEqual({});
    // The old processes stopped taking requests once drained.
    expect(load.versions.get('v1')).toBe(v1);
    const status = await run.status();
    expect(status.crashes).toEqual([]);
    expect(status.instances.some((i) => i.pid === undefined || before.includes(i.pid))).toBe(false);
  });

  it('a broken new version is rolled back: the old processes keep accepting, 0 failed, reload exits 1', async () => {
    const { run, file } = await supervise(CLUSTER);
    const before = (await run.status()).instances.map((i) => i.pid);
    const load = traffic(run.port);
    await flowed(load);
    writeFileSync(file, 'broken');
    const reload = await reloadCli(run.stateDir);
    expect(reload.code).toBe(1);
    expect(reload.out).toContain('BWK_ERR_SUPERVISOR_RELOAD_FAILED');
    expect(reload.out).toContain('broken deploy');
    await flowed(load);
    await load.stop();
    expect(Object.fromEntries(load.errors)).toEqual({});
    expect([...load.versions.keys()]).toEqual(['v1']);
    expect((await run.status()).instances.map((i) => i.pid)).toEqual(before);
  });

  it('a new version that listens but fails its probes is never admitted to the socket and is rolled back: 0 failed', async () => {
    const { run, file } = await supervise([
      ...CLUSTER,
      ...['--ready-path', '/health/ready', '--live-path', '/health/live'],
    ]);
    const before = (await run.status()).instances.map((i) => i.pid);
    // A new connection per request: what reaches a process that accepts from the socket.
    const load = traffic(run.port, { keepAlive: false });
    await flowed(load);
    writeFileSync(file, 'sick');
    const reload = await reloadCli(run.stateDir);
    expect(reload.code).toBe(1);
    expect(reload.out).toContain('liveness probe');
    await flowed(load);
    await load.stop();
    // The sick processes answer 500 to everything: not one reached a client, they never accepted.
    expect(Object.fromEntries(load.errors)).toEqual({});
    expect([...load.versions.keys()]).toEqual(['v1']);
    expect((await run.status()).instances.map((i) => i.pid)).toEqual(before);
  });

  it('the supervisor killed with -9: its app processes drain and exit, and the port is free again', async () => {
    const { run } = await supervise(CLUSTER);
    const pids = [await runningPid(run, 0), await runningPid(run, 1)];
    run.child.kill('SIGKILL');
    await run.exited;
    for (const pid of pids) await until(() => !alive(pid), 30_000, `orphaned app process ${pid} exited`);
    // No orphan holds the inherited socket: a new supervisor (here, any server) can bind the port.
    // Within a second: the kernel may take some ms to release it after the last process holding it
    // is gone (seen once, 45 ms, with round-robin: nothing left in `ss` by then).
    const binds = () =>
      new Promise<boolean>((resolve) => {
        const server = net.createServer();
        server.once('error', () => resolve(false));
        server.listen(run.port, () => server.close(() => resolve(true)));
      });
    await until(binds, 1_000, `port ${run.port} free again`);
  });

  it("the app's maxConnections holds: past it a connection is dropped (and 'drop' emitted), below it served", async () => {
    const { run } = await supervise(PROBES, 'v1', { MAX_CONNECTIONS: '2' });
    const capHolds = async (drops: number) => {
      // Two keep-alive connections, each with an answered request: the app holds both open.
      const held = [0, 1].map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
      for (const agent of held) expect(await request(run.port, agent, false)).toHaveProperty('answer');
      // A third is closed unanswered, as node:http does with its own accepts.
      expect(await request(run.port, false, false)).toHaveProperty('error');
      const dropped = () => run.stdout().split('socket-app dropped a connection').length - 1;
      await until(() => dropped() >= drops, 5_000, `the app's 'drop' event (${drops})`);
      // One of the two closes: a new connection is served again.
      held[0]?.destroy();
      await until(
        async () => 'answer' in (await request(run.port, false, false)),
        5_000,
        'served below the cap',
      );
      held[1]?.destroy();
    };
    await capHolds(1);
    // A reload's process takes its connections through another path (admitted after its probes).
    const before = await runningPid(run);
    expect((await reloadCli(run.stateDir)).code).toBe(0);
    await runningPid(run, 0, before);
    await capHolds(2);
  });
});

describe('bulwark supervise --balance round-robin', TIMEOUT, () => {
  it('deals keep-alive connections evenly: 100 opened at once split 50/50 between 2 processes', async () => {
    const { run } = await superviseWith(['--balance', 'round-robin', ...CLUSTER]);
    const pids = [await runningPid(run, 0), await runningPid(run, 1)];
    // 100 requests at once on an agent of 100 sockets: 100 new connections, one request each.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });
    const answers = await Promise.all(Array.from({ length: 100 }, () => request(run.port, agent, false)));
    agent.destroy();
    const byPid = new Map<number, number>();
    for (const result of answers)
      if ('answer' in result) byPid.set(result.answer.pid, (byPid.get(result.answer.pid) ?? 0) + 1);
    // On the shared socket the kernel split such bursts 14/86, 75/25, 31/69 (docs/benchmarks.md).
    expect(Object.fromEntries(byPid)).toEqual({ [pids[0] ?? 0]: 50, [pids[1] ?? 0]: 50 });
  });
});

describe('bulwark supervise --balance round-robin without an IPC channel', TIMEOUT, () => {
  it('an app process that cannot take dealt connections is not used, with the reason logged', async () => {
    // The app's Node process without the supervisor's channel (as under a wrapper that drops it):
    // the preload falls back to accepting itself, which round-robin cannot balance.
    const run = await startSupervisor(
      ['--balance', 'round-robin', ...CLUSTER, '--start-timeout-ms', '5000'],
      {
        command: ['env', '-u', 'NODE_CHANNEL_FD', ...APP],
        port: 0,
        env: { VERSION_FILE: versionFile('v1') },
      },
    );
    await run.waitFor(/needs the app's Node process to get the supervisor's IPC channel/, 60_000);
    expect(run.stderr()).toContain('cannot use the app');
    const status = await run.status();
    expect(status.instances.every((i) => i.state !== 'running')).toBe(true);
  });
});

describe('bulwark supervise options', () => {
  it('rejects an unknown --balance with the field named', async () => {
    const cli = spawnTs('src/cli/main.ts', ['supervise', '--balance', 'dns', '--', ...APP], {});
    const { code } = await cli.exited;
    expect(code).not.toBe(0);
    expect(cli.stderr()).toContain('BWK_ERR_SUPERVISOR_OPTIONS');
    expect(cli.stderr()).toContain('--balance');
  });
});

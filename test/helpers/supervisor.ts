import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { requestSupervisor } from '../../src/supervised/control-client.js';
import { PORT_IN_USE, PortInUseError, onFreePort, type PortChoice } from './ports.js';
import { spawnTs, type Spawned } from './process.js';
import { until } from './wait.js';

/** The fixture app's command, as given after `--`. */
export const FIXTURE_APP = [process.execPath, '--import', 'tsx', 'test/fixtures/supervised-app.ts'];

/** Cluster mode behind the supervisor's proxy (`--balance proxy`), probed every 200 ms: the tests of the proxy's behaviour. */
export const PROXY_CLUSTER = ['--balance', 'proxy', '--instances', '2', '--probe-interval-ms', '200'];

/** A `bulwark supervise` process started by a test. */
export interface SupervisorRun extends Spawned {
  stateDir: string;
  port: number;
  status(): Promise<SupervisorStatus>;
  events(): Promise<{ type: string; slot?: number; detail?: Record<string, unknown> }[]>;
  /** SIGTERM, then waits for the exit (SIGKILL after 15 s). */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface InstanceStatus {
  slot: number;
  state: string;
  pid?: number;
  port?: number;
  id?: string;
  restarts: number;
  heartbeat: boolean;
  rss?: number;
}

export interface SupervisorStatus {
  state: string;
  port: number;
  instances: InstanceStatus[];
  crashes: {
    reason: string;
    exitCode: number | null;
    signal: string | null;
    uptimeMs: number;
    rssAtDeath?: number;
    reportPath?: string;
    lastLines: string[];
    instanceId: string;
    pid?: number;
  }[];
  recoveries: {
    step: string;
    resource: string;
    before: number;
    after?: number;
    helped?: boolean;
    actions?: string[];
  }[];
  lastReload?: { ok: boolean; detail: string };
}

const runs: SupervisorRun[] = [];

/** Options of {@link startSupervisor}. */
export interface StartSupervisorOptions {
  env?: NodeJS.ProcessEnv;
  command?: string[];
  /**
   * The public port. Default: cluster mode binds port 0 and `run.port` is the one it got; direct
   * mode (where the app binds it) picks a free one and moves to a fresh one if it was taken.
   */
  port?: number;
  stateDir?: string;
  umask?: number;
  /** How direct mode picks its port (see {@link onFreePort}); only the helper's own tests change it. */
  ports?: PortChoice;
}

// The supervisor's log line once every slot has had its first start attempt (pino JSON on stderr).
const STARTED = /"port":(\d+),[^\n]*"msg":"supervisor started"/;

/**
 * Starts `bulwark supervise [args] -- <command>` with a fresh state dir (or `stateDir`, which the
 * supervisor creates); with `umask`, the supervisor (and so its app) runs under it. Unless `port`
 * is given, resolves only after the first start attempt of every slot (or the supervisor's exit),
 * with `port` the one really served on: in direct mode a first start that failed because another
 * process took the port (EADDRINUSE, `BWK_ERR_SUPERVISOR_PORT_BUSY`) is stopped and made again on
 * a fresh port; later restarts on a taken port are the supervisor's to handle.
 */
export async function startSupervisor(
  args: string[],
  opts: StartSupervisorOptions = {},
): Promise<SupervisorRun> {
  if (opts.port !== undefined && opts.port !== 0) return spawnSupervisor(args, opts, opts.port);
  if (opts.port === 0 || args.includes('--instances')) {
    // Cluster mode: the proxy in the supervisor binds the public port, so port 0 and read it back.
    const run = await spawnSupervisor(args, opts, 0);
    if (await firstStartDone(run)) run.port = Number(STARTED.exec(run.stderr())?.[1]);
    return run;
  }
  return onFreePort(async (port) => {
    const run = await spawnSupervisor(args, opts, port);
    await firstStartDone(run);
    const busy = await portBusy(run);
    if (busy === undefined) return run;
    runs.splice(runs.indexOf(run), 1);
    await run.stop();
    if (opts.stateDir === undefined) await rm(run.stateDir, { recursive: true, force: true });
    throw new PortInUseError(port, busy);
  }, opts.ports);
}

/** Resolves true once the supervisor logged its first start attempts, false if it exited before. */
async function firstStartDone(run: SupervisorRun): Promise<boolean> {
  // Each tsx app takes seconds to start on a loaded machine; --start-timeout-ms bounds the attempt.
  return Promise.race([run.waitFor(STARTED, 300_000).then(() => true), run.exited.then(() => false)]);
}

/** Why the first start failed on a taken port, from the output or the crash records; undefined if not. */
async function portBusy(run: SupervisorRun): Promise<string | undefined> {
  const output = run.stdout() + run.stderr();
  if (PORT_IN_USE.test(output)) return output;
  if (run.child.exitCode !== null || run.child.signalCode !== null) return undefined;
  // With --no-echo the app's output is not copied: its last lines are in the crash records.
  const crashes = (await run.status().catch(() => undefined))?.crashes ?? [];
  const crash = crashes.find((c) => c.reason === 'port-busy' || PORT_IN_USE.test(c.lastLines.join('\n')));
  return crash === undefined ? undefined : crash.lastLines.join('\n');
}

async function spawnSupervisor(
  args: string[],
  opts: StartSupervisorOptions,
  port: number,
): Promise<SupervisorRun> {
  const stateDir = opts.stateDir ?? (await mkdtemp(path.join(os.tmpdir(), 'bwk-sup-')));
  // A child inherits the umask at spawn: set it around the spawn only.
  const previousUmask = opts.umask === undefined ? undefined : process.umask(opts.umask);
  let spawned: Spawned;
  try {
    spawned = spawnTs(
      'src/cli/main.ts',
      [
        'supervise',
        '--state-dir',
        stateDir,
        '--port',
        String(port),
        ...args,
        '--',
        ...(opts.command ?? FIXTURE_APP),
      ],
      opts.env ?? {},
    );
  } finally {
    if (previousUmask !== undefined) process.umask(previousUmask);
  }
  const run: SupervisorRun = {
    ...spawned,
    stateDir,
    port,
    status: async () =>
      (await requestSupervisor(stateDir, 'GET', '/status', 5_000)).body as unknown as SupervisorStatus,
    events: async () =>
      (await requestSupervisor(stateDir, 'GET', '/events', 5_000)).body['events'] as {
        type: string;
        slot?: number;
        detail?: Record<string, unknown>;
      }[],
    async stop() {
      if (spawned.child.exitCode === null && spawned.child.signalCode === null) spawned.child.kill('SIGTERM');
      const timer = setTimeout(() => spawned.child.kill('SIGKILL'), 15_000);
      const exit = await spawned.exited;
      clearTimeout(timer);
      return exit;
    },
  };
  runs.push(run);
  return run;
}

/**
 * Stops every supervisor a test started, then removes their state dirs (afterEach). All stop
 * first: a test may run two supervisors on one state dir one after the other, and removing the dir
 * when the first had stopped raced the second, which was still writing its logs and state.json
 * there (ENOTEMPTY under load).
 */
export async function stopSupervisors(): Promise<void> {
  const stopping = runs.splice(0);
  await Promise.all(stopping.map((run) => run.stop()));
  for (const stateDir of new Set(stopping.map((run) => run.stateDir))) {
    const alive = stopping.filter((run) => run.stateDir === stateDir && running(run));
    if (alive.length > 0)
      throw new Error(`a supervisor still runs on ${stateDir} (pid ${alive[0]?.child.pid})`);
    await rm(stateDir, { recursive: true, force: true });
  }
}

const running = (run: SupervisorRun) => run.child.exitCode === null && run.child.signalCode === null;

/**
 * Waits until the supervisor's slot `slot` runs an instance (optionally not `notPid`). The default
 * bound is generous: on a loaded machine each tsx process takes seconds to start.
 */
export async function runningPid(
  run: SupervisorRun,
  slot = 0,
  notPid?: number,
  timeoutMs = 60_000,
): Promise<number> {
  let pid: number | undefined;
  await until(
    async () => {
      const status = await run.status().catch(() => undefined);
      const instance = status?.instances[slot];
      if (instance?.state !== 'running' || instance.pid === undefined || instance.pid === notPid)
        return false;
      pid = instance.pid;
      return true;
    },
    timeoutMs,
    `slot ${slot} running${notPid === undefined ? '' : ` a pid other than ${notPid}`}`,
  );
  return pid ?? 0;
}

/** GET on 127.0.0.1:port: status and body, or the error code (`timeout` after `timeoutMs` idle). */
export function get(
  port: number,
  pathname: string,
  agent: http.Agent | false = false,
  timeoutMs = 10_000,
): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const request = http.get(
      { host: '127.0.0.1', port, path: pathname, agent, timeout: timeoutMs },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
        response.on('error', (error: NodeJS.ErrnoException) =>
          resolve({ error: error.code ?? error.message }),
        );
      },
    );
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
  });
}

/**
 * Keep-alive GET load on `port` by `concurrency` clients until `stop()`; counts answers by
 * outcome (`ok()` so far: wait on it to place a fault after load has flowed). Used to show that kills and reloads in cluster mode fail no request.
 */
export function load(
  port: number,
  concurrency = 16,
): { ok(): number; stop(): Promise<{ ok: number; failed: number; errors: string[] }> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let running = true;
  let ok = 0;
  let failed = 0;
  const errors: string[] = [];
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      const result = await get(port, '/', agent);
      if ('status' in result && result.status === 200) ok += 1;
      else {
        failed += 1;
        if (errors.length < 20)
          errors.push('status' in result ? `${result.status} ${result.body.slice(0, 200)}` : result.error);
      }
    }
  });
  return {
    ok: () => ok,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return { ok, failed, errors };
    },
  };
}

export { alive } from './proc.js';

const versionDirs: string[] = [];
afterAll(() => {
  for (const dir of versionDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/**
 * A file holding `content` (the version a reload fixture app answers with), in a temp dir removed
 * after the test file.
 */
export function versionFile(content: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bwk-version-'));
  versionDirs.push(dir);
  const file = path.join(dir, 'version');
  writeFileSync(file, content);
  return file;
}

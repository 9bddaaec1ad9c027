// Starts real, throwaway PostgreSQL servers for integration tests: initdb into a temp dir, listen on
// 127.0.0.1 at a free port, trust authentication, fsync off. Never skips: missing binaries throw.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { onFreePort, PortInUseError, type PortChoice } from './ports.js';
import { alive, procStat } from './proc.js';

const run = promisify(execFile);

/** A running test server. */
export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`; trust authentication, no password. */
  readonly url: string;
  readonly port: number;
  /** Directory holding the cluster (`data/`) and the unix socket (`sock/`); reusable by `startPostgres`. */
  readonly dir: string;
  /**
   * Fast shutdown (SIGKILL after 15 s), then deletes `dir` if this server created it. Safe to call
   * twice or after `kill`. Stop a server restarted on `dir` before the one that created it.
   */
  stop(): Promise<void>;
  /**
   * Sends `signal` (default SIGKILL) to the server. SIGKILL hits the postmaster and every backend at
   * once, like a crash; it and the other terminating signals resolve once all of them are gone. `dir`
   * is kept, so a server started on it afterwards runs crash recovery.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /**
   * Freezes the server for real: SIGSTOPs the postmaster, then every backend and auxiliary process
   * (each backend is its own process group, so signalling the postmaster's group misses them), and
   * resolves once all are stopped. Open connections stay up and the kernel still accepts new ones,
   * but nothing is read or answered until {@link PostgresServer.resume}.
   */
  pause(): Promise<void>;
  /** SIGCONTs every process of a paused server and resolves once none is stopped. */
  resume(): Promise<void>;
}

/** Options of {@link startPostgres}. */
export interface StartPostgresOptions {
  /** Reuse the cluster in this directory (from an earlier server's `dir`) instead of a new one. */
  dir?: string;
  /** How the port is picked (see {@link onFreePort}); only the helper's own tests change it. */
  ports?: PortChoice;
}

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const TERMINATING: ReadonlySet<string> = new Set(['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGQUIT']);
const live = new Set<ChildProcess>();

// A crashed or interrupted test run must not leave servers behind; only groups we spawned are hit.
process.once('exit', () => {
  for (const child of live) {
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
});

/**
 * The directory of `initdb` and `postgres`: `pg_config --bindir` when it has them, else the newest
 * `/usr/lib/postgresql/<version>/bin`; `undefined` when neither exists.
 */
export function findPostgresBinDir(): string | undefined {
  const hasServer = (dir: string) =>
    existsSync(path.join(dir, 'postgres')) && existsSync(path.join(dir, 'initdb'));
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
    if (hasServer(dir)) return dir;
  } catch {
    // No pg_config (or only the client package); look where Debian puts the server.
  }
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((name) => hasServer(path.join(root, name, 'bin')))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  return versions[0] === undefined ? undefined : path.join(root, versions[0], 'bin');
}

/**
 * Starts a server and resolves once it accepts connections. A port taken between picking and
 * binding is replaced by a fresh one ({@link onFreePort}).
 */
export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresServer> {
  const bin = findPostgresBinDir();
  if (bin === undefined) {
    throw new Error(
      process.env.CI
        ? 'PostgreSQL server binaries not found on this CI machine; the CI image must install them ' +
            '(apt-get install postgresql). Store integration tests never skip.'
        : '\n\n*** PostgreSQL server binaries (initdb, postgres) not found. ***\n' +
            '*** Install them: sudo apt-get install postgresql                ***\n' +
            '*** The store tests run against a real server and never skip.     ***\n',
    );
  }
  // PostgreSQL refuses to run as root, so as root everything runs as the `postgres` user.
  const asRoot = process.getuid?.() === 0;
  const dir = opts.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'bulwark-pg-')));
  const data = path.join(dir, 'data');
  const sock = path.join(dir, 'sock');
  const command = (file: string, args: string[]): [string, string[]] =>
    asRoot
      ? ['runuser', ['-u', 'postgres', '--', path.join(bin, file), ...args]]
      : [path.join(bin, file), args];

  if (opts.dir === undefined) {
    await mkdir(sock);
    if (asRoot) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
      await chown(dir, uid, gid);
      await chown(sock, uid, gid);
    }
    const [file, args] = command('initdb', [
      '-D',
      data,
      '-U',
      'postgres',
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--no-sync',
    ]);
    await run(file, args);
  }

  let launched: Launched;
  try {
    launched = await onFreePort((port) => launch(command, data, sock, port), opts.ports);
  } catch (error) {
    if (opts.dir === undefined) await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const { port, url, child, exited } = launched;

  let stopped = false;
  /** The processes a pause stopped, for the resume. */
  let paused: number[] = [];
  return {
    url,
    port,
    dir,
    async pause() {
      const root = postmasterPid(data);
      if (root === undefined) throw new Error('PostgreSQL test server is not running; cannot pause it');
      // The postmaster first, so it forks no new backend while they are stopped; then until a scan
      // finds no process left running (one may have been forked just before the postmaster stopped).
      paused = [root];
      process.kill(root, 'SIGSTOP');
      for (;;) {
        const running = descendants(root).filter((pid) => !paused.includes(pid));
        if (running.length === 0) break;
        for (const pid of running) {
          signalIfAlive(pid, 'SIGSTOP');
          paused.push(pid);
        }
      }
      // runuser (as root, the postmaster's parent) stops itself when it sees its child stopped, like
      // su; it must be continued as well, or it never reaps the postmaster after a stop.
      if (child.pid !== undefined && child.pid !== root) paused.push(child.pid);
      await untilStopped(paused, true);
    },
    async resume() {
      const pids = paused;
      paused = [];
      for (const pid of pids) signalIfAlive(pid, 'SIGCONT');
      await untilStopped(pids, false);
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (signal === 'SIGKILL') return killTree(child, data);
      process.kill(postmasterPid(data) ?? child.pid ?? 0, signal);
      if (TERMINATING.has(signal)) await exited;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // A paused server would ignore the fast shutdown until the SIGKILL fallback.
      for (const pid of paused.splice(0)) signalIfAlive(pid, 'SIGCONT');
      if (child.exitCode === null && child.signalCode === null) {
        const pid = postmasterPid(data);
        if (pid !== undefined) process.kill(pid, 'SIGINT'); // fast shutdown
        const timer = new Promise<'timeout'>((resolve) =>
          setTimeout(resolve, STOP_TIMEOUT_MS, 'timeout').unref(),
        );
        if ((await Promise.race([exited, timer])) === 'timeout') await killTree(child, data);
      }
      if (opts.dir === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A schema name no other test uses. */
export function uniqueSchema(prefix = 't'): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

/** Drops `schema` and everything in it; fine when it does not exist. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema.replaceAll('"', '""')}" cascade`);
  } finally {
    await client.end();
  }
}

interface Launched {
  port: number;
  url: string;
  child: ChildProcess;
  exited: Promise<void>;
}

/** Starts `postgres` on `port` and resolves once it accepts connections; kills it when it does not. */
async function launch(
  command: (file: string, args: string[]) => [string, string[]],
  data: string,
  sock: string,
  port: number,
): Promise<Launched> {
  const [file, args] = command('postgres', [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    sock,
    '-c',
    'listen_addresses=127.0.0.1',
    // fsync only protects against an OS crash. A killed server still recovers every acknowledged
    // commit from its WAL, which is why synchronous_commit stays on.
    '-c',
    'fsync=off',
  ]);
  // Own process group, so the whole server can be signalled without touching anything else.
  const child = spawn(file, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => live.delete(child));

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  try {
    await waitReady(url, data, port, exited, () => output);
  } catch (error) {
    await killTree(child, data);
    throw error;
  }
  return { port, url, child, exited };
}

/**
 * Polls until the server on `url` answers, and is ours: another test's server that holds the port
 * would answer too while ours is still failing to bind it (then {@link PortInUseError}).
 */
async function waitReady(
  url: string,
  data: string,
  port: number,
  exited: Promise<void>,
  output: () => string,
): Promise<void> {
  let done = false;
  void exited.then(() => (done = true));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (done) throw new Error(`PostgreSQL exited during startup:\n${output()}`);
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
    try {
      await client.connect();
      const { rows } = await client.query<{ dir: string }>("select current_setting('data_directory') as dir");
      if (path.resolve(rows[0]?.dir ?? '') !== path.resolve(data)) {
        throw new PortInUseError(port, `another PostgreSQL (${rows[0]?.dir}) answers on it`);
      }
      return;
    } catch (error) {
      if (error instanceof PortInUseError) throw error;
      if (Date.now() > deadline) {
        throw new Error(`PostgreSQL not ready after ${READY_TIMEOUT_MS} ms:\n${output()}`, { cause: error });
      }
    } finally {
      await client.end().catch(() => undefined);
    }
    // Polling a starting server, not papering over a race: startup takes a variable while.
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * SIGKILLs the postmaster and all its children at once; resolves when all are gone. Our spawned
 * process (runuser, when root) is left alone: it is the postmaster's parent and must reap it, since
 * a zombie postmaster keeps its PID alive and the next server on this directory would then refuse
 * to start ("lock file postmaster.pid already exists").
 */
async function killTree(child: ChildProcess, data: string): Promise<void> {
  const exited =
    child.exitCode === null && child.signalCode === null ? once(child, 'exit') : Promise.resolve();
  const root = postmasterPid(data) ?? child.pid;
  const pids = root === undefined ? [] : [root, ...descendants(root)];
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already exited.
    }
  }
  await exited;
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (pids.some(alive) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function postmasterPid(data: string): number | undefined {
  try {
    const pid = Number.parseInt(
      readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '',
      10,
    );
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Every live descendant of `pid` (backends put themselves in their own process groups). */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    const stat = procStat(Number(entry));
    if (stat !== undefined) parents.set(Number(entry), stat.ppid);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.pop();
    for (const [child, ppid] of parents) {
      if (ppid === parent) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

function signalIfAlive(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Exited meanwhile.
  }
}

/** Resolves once each live process of `pids` is stopped (`stopped`) or running (not `stopped`). */
async function untilStopped(pids: number[], stopped: boolean): Promise<void> {
  // Signal delivery is asynchronous: the state the test asked for must hold before it goes on.
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const wrong = () => pids.filter((pid) => alive(pid) && (procStat(pid)?.state === 'T') !== stopped);
  while (wrong().length > 0) {
    if (Date.now() > deadline)
      throw new Error(`PostgreSQL processes ${wrong().join(', ')} did not stop/continue`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

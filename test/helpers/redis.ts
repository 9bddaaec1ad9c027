// Starts real, throwaway redis-server processes for integration tests and injects faults into them:
// crash (SIGKILL), blackhole (SIGSTOP), restart empty on the same port, flapping. Never skips: a
// missing binary throws. No persistence, so a restarted server always comes back empty.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { requireBinary } from './binaries.js';
import { onFreePort, PortInUseError, type PortChoice } from './ports.js';
import { procStat } from './proc.js';

/** A running (or deliberately downed) test server; see {@link startRedis}. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>`; no password, database 0. Stays the same across `restart()`. */
  readonly url: string;
  readonly port: number;
  /** The server's working directory (temp, empty: nothing is persisted); deleted by `stop()`. */
  readonly dir: string;
  /** PID of the current server process; changes on `restart()`, keeps the old value after `kill()`. */
  readonly pid: number;
  /**
   * SIGKILLs the server, like a crash; resolves once the process is reaped and the port refuses
   * connections. Open client sockets see a reset/close. Works while paused. No-op when already down.
   */
  kill(): Promise<void>;
  /**
   * SIGSTOPs the server: a blackhole. Open TCP connections stay up and the kernel still accepts new
   * ones into the listen backlog, but nothing is read or answered until `resume()`. Commands written
   * meanwhile are executed after `resume()`, so a client timeout does not mean "not applied".
   */
  pause(): Promise<void>;
  /** SIGCONTs a paused server; it then works through everything clients sent meanwhile. */
  resume(): Promise<void>;
  /**
   * Starts a new, empty server on the same port and resolves once it answers PING. Kills the current
   * one first if it is still running. Retries for a few seconds while the port is still taken.
   */
  restart(): Promise<void>;
  /** Alternates down/up periods; see {@link FlapOptions}. Resolves `done` with the server up. */
  flap(opts: FlapOptions): Flap;
  /**
   * Stops any flap, SIGCONTs if paused, SIGKILLs the server and deletes its temp dir. Idempotent;
   * safe in `afterAll` whatever state the server is in. The handle is unusable afterwards.
   */
  stop(): Promise<void>;
  /** The server's recent stdout/stderr (last ~8 kB), for failure messages. */
  output(): string;
}

/** Options of {@link RedisServer.flap}. */
export interface FlapOptions {
  /** Milliseconds each down period lasts. */
  downMs: number;
  /** Milliseconds each up period lasts (the last one included, before `done` resolves). */
  upMs: number;
  /** Number of down+up cycles. */
  cycles: number;
  /**
   * `'kill'` (default): SIGKILL then `restart()`, so every up period starts with an empty server and
   * clients must reconnect. `'pause'`: SIGSTOP then SIGCONT, connections survive and data is kept.
   */
  mode?: 'kill' | 'pause';
}

/** A running flap. */
export interface Flap {
  /** Resolves after the last cycle (or after `stop()`), with the server up; rejects if a restart failed. */
  readonly done: Promise<void>;
  /** Ends the flap early: brings the server up now and resolves when `done` does. */
  stop(): Promise<void>;
}

/** Options of {@link startRedis}. */
export interface StartRedisOptions {
  /** Extra `redis-server` arguments appended to the defaults, e.g. `['--maxmemory', '1mb']`. */
  args?: readonly string[];
  /** How the port is picked (see {@link onFreePort}); only the helper's own tests change it. */
  ports?: PortChoice;
}

const READY_TIMEOUT_MS = 10_000;
const PORT_RETRY_MS = 5_000;
const OUTPUT_LIMIT = 8_000;
const live = new Set<ChildProcess>();
const dirs = new Set<string>();

// A crashed or interrupted test run must not leave servers behind; only groups we spawned are hit.
// SIGCONT too: a stopped process still dies of SIGKILL, but this keeps `ps` output unsurprising.
process.once('exit', () => {
  for (const child of live) {
    if (child.pid === undefined) continue;
    for (const signal of ['SIGKILL', 'SIGCONT'] as const) {
      try {
        process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    }
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * Starts a `redis-server` on a free 127.0.0.1 port in a fresh temp dir (no RDB, no AOF) and resolves
 * once it answers; throws with the server's output if it does not within 10 s. A port taken
 * between picking and binding is replaced by a fresh one ({@link onFreePort}).
 */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const bin = requireBinary('redis-server', 'redis-server');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bulwark-redis-'));
  dirs.add(dir);
  let port: number;
  let proc: Proc;
  try {
    ({ port, proc } = await onFreePort(
      async (free) => ({ port: free, proc: await launch(bin, dir, free, opts.args ?? []) }),
      opts.ports,
    ));
  } catch (error) {
    dirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  let paused = false;
  let stopped = false;
  let flapping: Flap | undefined;
  const usable = () => {
    if (stopped) throw new Error('redis test server already stopped');
  };
  const kill = async () => {
    await proc.kill();
    paused = false;
  };
  const restart = async () => {
    usable();
    await kill();
    const previous = proc;
    // Carry the old output over, so a failed restart shows why the previous server died too.
    proc = await launchRetrying(bin, dir, port, opts.args ?? [], () => previous.output());
  };
  const signal = async (name: 'SIGSTOP' | 'SIGCONT') => {
    if (!proc.running()) throw new Error(`redis test server is down; cannot send ${name}`);
    process.kill(proc.pid, name);
    // Signal delivery is asynchronous; resolve only once the process is really (un)stopped, so a
    // test's next command is guaranteed to meet the state it asked for.
    const want = name === 'SIGSTOP';
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (isStopped(proc.pid) !== want) {
      if (Date.now() > deadline) throw new Error(`redis-server ${proc.pid} did not react to ${name}`);
      await sleep(5);
    }
  };

  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return proc.pid;
    },
    kill: async () => {
      usable();
      await kill();
    },
    pause: async () => {
      usable();
      await signal('SIGSTOP');
      paused = true;
    },
    resume: async () => {
      usable();
      await signal('SIGCONT');
      paused = false;
    },
    restart,
    flap(flapOpts) {
      usable();
      if (flapping !== undefined) throw new Error('redis test server is already flapping');
      const flap = startFlap(flapOpts, {
        down: flapOpts.mode === 'pause' ? () => server.pause() : kill,
        up: flapOpts.mode === 'pause' ? () => server.resume() : restart,
      });
      flapping = flap;
      void flap.done.then(
        () => (flapping = undefined),
        () => (flapping = undefined),
      );
      return flap;
    },
    async stop() {
      if (stopped) return;
      // A flap would otherwise restart the server behind our back.
      await flapping?.stop().catch(() => undefined);
      stopped = true;
      if (paused && proc.running()) process.kill(proc.pid, 'SIGCONT');
      await proc.kill();
      dirs.delete(dir);
      await rm(dir, { recursive: true, force: true });
    },
    output: () => proc.output(),
  };
  return server;
}

/**
 * An ioredis client for tests, not yet connected (`lazyConnect`: call `connect()` or send a command).
 * Fails fast instead of hiding faults: no offline queue (commands while disconnected reject at once
 * with "Stream isn't writeable..."), no per-command retries, 1 s connect and command timeouts, and a
 * fixed 50 ms reconnect delay so it is back soon after a `restart()`. `error` events are swallowed
 * (reconnect noise); assert on command rejections instead. `opts` override any of these. The caller
 * must `disconnect()` it. Note `connectTimeout` only covers the TCP handshake: against a paused
 * server the handshake succeeds and `connect()` then hangs until the server resumes.
 */
export function redisClient(url: string, opts: RedisOptions = {}): Redis {
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1_000,
    commandTimeout: 1_000,
    retryStrategy: () => 50,
    ...opts,
  });
  // Without a listener ioredis prints every failed reconnect attempt to the console.
  client.on('error', () => undefined);
  return client;
}

/** A key prefix no other test (or test process) uses, ending in `:`. */
export function uniquePrefix(name = 't'): string {
  return `${name}:${process.pid}:${randomBytes(4).toString('hex')}:`;
}

/** One redis-server process. */
interface Proc {
  readonly pid: number;
  running(): boolean;
  output(): string;
  /** SIGKILL; resolves once reaped and the port refuses connections. */
  kill(): Promise<void>;
}

/**
 * `launch` on the port the server had before (its URL must not change), retrying while that port is
 * still bound by something else (e.g. a lingering socket). Unlike a first start it cannot move to a
 * fresh port: if another process took the port while the server was down, this fails after 5 s.
 */
async function launchRetrying(
  bin: string,
  dir: string,
  port: number,
  args: readonly string[],
  previousOutput: () => string,
): Promise<Proc> {
  const deadline = Date.now() + PORT_RETRY_MS;
  for (;;) {
    try {
      return await launch(bin, dir, port, args, previousOutput());
    } catch (error) {
      if (!(error instanceof PortInUseError) || Date.now() > deadline) throw error;
    }
    // Waiting for the kernel to release the port; there is nothing to be notified by.
    await sleep(100);
  }
}

async function launch(
  bin: string,
  dir: string,
  port: number,
  args: readonly string[],
  previousOutput = '',
): Promise<Proc> {
  const child = spawn(
    bin,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--dir',
      dir,
      ...args,
    ],
    // Own process group, so the exit handler can signal it without touching anything else.
    { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  live.add(child);
  let output = previousOutput;
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let running = true;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      running = false;
      live.delete(child);
      resolve();
    });
    // Spawn failure (e.g. the binary vanished): no 'exit' follows, so settle here.
    child.once('error', (error) => {
      running = false;
      live.delete(child);
      keep(Buffer.from(`spawn error: ${error.message}\n`));
      resolve();
    });
  });

  const proc: Proc = {
    pid: child.pid ?? -1,
    running: () => running,
    output: () => output,
    async kill() {
      if (running && child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // Exited between the check and the signal; 'exit' still fires.
        }
      }
      await exited;
      // Reaped means its sockets are closed; this only guards against that assumption being wrong.
      const deadline = Date.now() + PORT_RETRY_MS;
      while ((await answersTcp(port)) && Date.now() < deadline) await sleep(20);
    },
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (!running) {
      const text = output.slice(previousOutput.length);
      if (/address already in use/i.test(text)) {
        throw new PortInUseError(port, `redis-server could not bind 127.0.0.1:${port}:\n${text}`);
      }
      throw new Error(`redis-server exited during startup (port ${port}):\n${text}`);
    }
    if (await answersAs(port, proc.pid)) return proc;
    if (Date.now() > deadline) {
      await proc.kill();
      throw new Error(
        `redis-server not answering on 127.0.0.1:${port} after ${READY_TIMEOUT_MS} ms:\n${output}`,
      );
    }
    // Polling a starting server: startup takes a variable while and announces nothing we can await.
    await sleep(25);
  }
}

/**
 * True when the server on `port` answers a raw `INFO server` within 500 ms as process `pid`: another
 * test's redis-server that holds the port answers too, while ours is still failing to bind it.
 */
function answersAs(port: number, pid: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false)); // closed without an answer: not a redis-server
    socket.once('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (!reply.startsWith('$')) return finish(false); // an error reply, e.g. -LOADING
      const found = /process_id:(\d+)\r\n/.exec(reply);
      if (found !== null) finish(Number(found[1]) === pid);
    });
  });
}

/** True when something accepts a TCP connection on the port. */
function answersTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(500, () => {
      socket.destroy();
      resolve(true); // neither accepted nor refused: something holds the port
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function startFlap(opts: FlapOptions, actions: { down: () => Promise<void>; up: () => Promise<void> }): Flap {
  let stopping = false;
  let wake: (() => void) | undefined;
  // Interruptible wait, so stop() does not have to sit out the rest of a period. stop() may also
  // land while a kill or restart is in progress, before the next wait exists: hence the check.
  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopping) return resolve();
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const run = async () => {
    for (let cycle = 0; cycle < opts.cycles && !stopping; cycle++) {
      await actions.down();
      await wait(opts.downMs);
      // Come back up even when stopped mid-down: `done` promises a running server.
      await actions.up();
      if (!stopping) await wait(opts.upMs);
    }
  };
  const done = run();
  return {
    done,
    async stop() {
      stopping = true;
      wake?.();
      await done;
    },
  };
}

/** True when the process is in job-control stop (state `T`), per /proc (Linux only, like CI). */
function isStopped(pid: number): boolean {
  return procStat(pid)?.state === 'T';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

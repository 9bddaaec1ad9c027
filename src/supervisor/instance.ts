import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReportChannel } from './diagnostics.js';
import type { OutputRing, RotatingLog } from './logs.js';
import type { AppMessage } from '../supervised/protocol.js';
import { CHANNEL_FD } from './shared-socket.js';
import { ListenChannel } from './listen-channel.js';
import type { Dealer, DealTarget } from './dealer.js';
import { MARK_VARIABLE, markedProcesses, newMark, signalEach, TRACK_BY_MARK } from './marked.js';

/** Where an instance is in its life. */
export type InstanceState = 'starting' | 'ready' | 'stopping' | 'exited';

/** How an instance ended. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  uptimeMs: number;
  /** Set when the command could not be started at all (ENOENT, EACCES, ...). */
  spawnError?: string;
}

/** Options of one app process. */
export interface InstanceOptions {
  id: string;
  slot: number;
  command: string[];
  env: NodeJS.ProcessEnv;
  /** The port the app listens on (its PORT). */
  port: number;
  host: string;
  heartbeatMs: number;
  log: RotatingLog;
  ring: OutputRing;
  echo: boolean;
  /** The supervisor's state directory (the app's admin API reads the supervisor from it). */
  stateDir: string;
  /** Cluster mode: the app is reached through the supervisor's proxy (it may trust X-Forwarded-For). */
  behindProxy: boolean;
  /**
   * `--balance socket`: the supervisor's listening socket (the app's fd 5) and the
   * environment that loads the listen preload; the app reports on its channel (fd {@link CHANNEL_FD}).
   * `--balance round-robin`: also the dealer that hands it connections once it listens (or, a
   * reload's, once admitted).
   */
  shared?: { fd: number; env: Record<string, string>; dealer?: Dealer };
}

/** A last resource sample. */
export interface Sample {
  at: number;
  rss: number;
  cpu: number;
}

/** Signals that ask a process to stop, and the exit codes of a process that obeyed one (0, 128 + n). */
const STOP_SIGNALS: ReadonlySet<string> = new Set(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT']);
const STOPPED_CODES: ReadonlySet<number> = new Set([0, 129, 130, 131, 143]);
/** How long an exit that looks like a stop from outside waits before the supervisor acts on it. */
export const OUTSIDE_STOP_GRACE_MS = 250;

/** The app's file descriptor of its report pipe (after stdin, stdout, stderr and the IPC channel). */
const REPORT_FD = 4;

/**
 * One app process, with everything it starts (so a stop reaches every process it started: found by
 * their mark on Linux, see {@link TRACK_BY_MARK}, by their process group elsewhere), with its
 * output copied to the slot's log file and ring, an IPC channel (used by apps built on Bulwark for
 * ready, heartbeats and recovery requests; harmless to any other program), a private report pipe
 * (fd 4: hang reports from a Bulwark app's report worker), and HTTP probes.
 */
export class Instance implements DealTarget {
  readonly id: string;
  readonly slot: number;
  readonly port: number;
  readonly #opts: InstanceOptions;
  #child: ChildProcess | undefined;
  /** Carried in the environment of the app process and of whatever it starts. */
  readonly #mark = newMark();
  state: InstanceState = 'starting';
  startedAt = 0;
  readyAt: number | undefined;
  /** The app announced itself over IPC (it sends heartbeats and takes recovery requests). */
  ipc = false;
  lastHeartbeat = 0;
  /** The app said it answers hang report requests on its report pipe ({@link reportChannel}). */
  reports = false;
  /** The supervisor's end of the report pipe (set once spawned). */
  reportChannel: ReportChannel | undefined;
  sample: Sample | undefined;
  /** Why the supervisor ended this instance (undefined: it exited on its own). */
  stopReason: string | undefined;
  /** A diagnostic report written before the instance was killed. */
  reportPath: string | undefined;
  /** Requests sent by the app over IPC (recovery replies and such). */
  onMessage: ((message: AppMessage) => void) | undefined;
  readonly exited: Promise<ExitInfo>;
  /**
   * The exit, once the supervisor may act on it: at once after a crash; {@link OUTSIDE_STOP_GRACE_MS}
   * later after an exit it did not ask for that looks like a stop (a stop signal, or exit code 0 or
   * 128 + one): the same stop may be on its way to the supervisor (Ctrl-C, `timeout`, systemd
   * stopping the service's whole control group), which then stops instead of restarting the app.
   */
  readonly ended: Promise<ExitInfo>;
  #resolveExit!: (info: ExitInfo) => void;
  #readyWaiters: (() => void)[] = [];
  /** `--balance socket`: what the app's listen preload reports (its probe port, drained). */
  listen: ListenChannel | undefined;
  /** An IPC ready message that came before the app listened on the shared socket. */
  #readyPending = false;
  /** Why the app can never be ready as started (`--balance round-robin` without an IPC channel). */
  #unusable: string | undefined;

  constructor(opts: InstanceOptions) {
    this.#opts = opts;
    this.id = opts.id;
    this.slot = opts.slot;
    this.port = opts.port;
    this.exited = new Promise((resolve) => (this.#resolveExit = resolve));
    this.ended = this.exited.then(async (info) => {
      const stop = STOP_SIGNALS.has(info.signal ?? '') || STOPPED_CODES.has(info.code ?? -1);
      if (this.stopReason === undefined && stop) await sleep(OUTSIDE_STOP_GRACE_MS);
      return info;
    });
  }

  /** Why the app can never be ready as started (`--balance round-robin` without an IPC channel). */
  get unusable(): string | undefined {
    return this.#unusable;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get uptimeMs(): number {
    return this.startedAt === 0 ? 0 : Date.now() - this.startedAt;
  }

  /** Spawns the process. Never throws: a command that cannot start ends as an exit with `spawnError`. */
  start(): void {
    const [file, ...args] = this.#opts.command;
    this.startedAt = Date.now();
    const shared = this.#opts.shared;
    const child = spawn(file ?? '', args, {
      detached: !TRACK_BY_MARK,
      stdio:
        shared === undefined
          ? ['ignore', 'pipe', 'pipe', 'ipc', 'pipe']
          : ['ignore', 'pipe', 'pipe', 'ipc', 'pipe', shared.fd, 'pipe'],
      env: {
        ...this.#opts.env,
        PORT: String(this.port),
        HOST: this.#opts.host,
        BULWARK_SUPERVISED: '1',
        BULWARK_SUPERVISOR_REPORT_FD: String(REPORT_FD),
        BULWARK_INSTANCE_ID: this.id,
        BULWARK_SUPERVISOR_STATE_DIR: this.#opts.stateDir,
        ...(this.#opts.behindProxy ? { BULWARK_BEHIND_PROXY: '1' } : {}),
        BULWARK_HEARTBEAT_MS: String(this.#opts.heartbeatMs),
        [MARK_VARIABLE]: this.#mark,
        ...shared?.env,
      },
    });
    this.#child = child;
    const channel = (child.stdio as unknown as (Duplex | null | undefined)[])[CHANNEL_FD];
    if (shared !== undefined && channel !== null && channel !== undefined) {
      this.listen = new ListenChannel(channel);
      this.listen.onListening = () => {
        if (shared.dealer !== undefined && this.listen?.dealt !== true)
          this.#unusable =
            "cannot use the app: it listens on the shared socket itself: --balance round-robin needs the app's Node process to get the supervisor's IPC channel (start it as `node server.js` or `sh -c 'node server.js'`, not through npm), or use --balance socket";
        if (shared.env['BULWARK_LISTEN_ADMIT'] !== 'probes') this.#joinRotation();
        if (this.#readyPending) this.#markReady();
        for (const waiter of this.#readyWaiters.splice(0)) waiter();
      };
    }
    const reportPipe = child.stdio[REPORT_FD] as Duplex | null | undefined;
    if (reportPipe !== null && reportPipe !== undefined) this.reportChannel = new ReportChannel(reportPipe);
    const onOutput = (target: NodeJS.WriteStream) => (chunk: Buffer) => {
      this.#opts.ring.push(chunk);
      this.#opts.log.write(chunk);
      if (this.#opts.echo) target.write(chunk);
    };
    child.stdout?.on('data', onOutput(process.stdout));
    child.stderr?.on('data', onOutput(process.stderr));
    child.on('message', (message: AppMessage) => this.#onMessage(message));
    // A disconnected channel (the app closed it, or exited) must not surface as an error.
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (child.pid === undefined) {
        const text = `cannot start ${file ?? ''}: ${error.message}\n`;
        this.#opts.ring.push(Buffer.from(text));
        this.#opts.log.write(text);
        this.#finish({ code: null, signal: null, uptimeMs: 0, spawnError: error.message });
      }
    });
    child.on('exit', (code, signal) => {
      this.#finish({ code, signal, uptimeMs: this.uptimeMs });
      void this.#reapRest();
    });
  }

  #finish(info: ExitInfo): void {
    if (this.state === 'exited') return;
    this.state = 'exited';
    if (this.#opts.shared?.dealer !== undefined) {
      closeUnacknowledged(this.#child);
      this.#opts.shared.dealer.lost(this);
    }
    for (const waiter of this.#readyWaiters.splice(0)) waiter();
    this.#resolveExit(info);
  }

  #onMessage(message: AppMessage): void {
    if (typeof message !== 'object' || message === null) return;
    switch (message.type) {
      case 'bulwark:hello':
        this.ipc = true;
        this.reports = message.reports === true;
        this.lastHeartbeat = Date.now();
        break;
      case 'bulwark:heartbeat':
        this.ipc = true;
        this.lastHeartbeat = Date.now();
        break;
      case 'bulwark:ready':
        this.ipc = true;
        this.lastHeartbeat = Date.now();
        this.#markReady();
        break;
      case 'bulwark:recovered':
        this.onMessage?.(message);
    }
  }

  #markReady(): void {
    if (this.state !== 'starting') return;
    // Ready means taking connections: on the shared socket, only once the app listens on it.
    if (this.listen !== undefined && this.listen.probePort === undefined) {
      this.#readyPending = true;
      return;
    }
    this.state = 'ready';
    this.readyAt = Date.now();
    for (const waiter of this.#readyWaiters.splice(0)) waiter();
  }

  /**
   * Resolves once the app is ready: an IPC ready message, or `readyPath` answering below 400
   * (polled every 25 ms). Rejects when the process exits first or after `timeoutMs`.
   */
  async waitReady(readyPath: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const changed = () =>
      new Promise<void>((resolve) => {
        this.#readyWaiters.push(resolve);
        setTimeout(resolve, 25).unref();
      });
    while (this.state === 'starting') {
      if (this.#unusable !== undefined) throw new Error(this.#unusable);
      if (Date.now() > deadline)
        throw new Error(
          this.listen !== undefined && this.listen.probePort === undefined
            ? `did not listen on the shared socket within ${timeoutMs} ms (a Node app must listen on $PORT; other programs need --balance proxy)`
            : `not ready within ${timeoutMs} ms`,
        );
      // The shared port reaches any instance: probe this one only once it reported its probe port.
      if (this.listen !== undefined && this.listen.probePort === undefined) {
        await changed();
        continue;
      }
      const status = await this.probe(readyPath, Math.min(1000, Math.max(1, deadline - Date.now())));
      if (status !== undefined && status < 400) this.#markReady();
      else if (this.state === 'starting') await changed();
    }
    if (this.state !== 'ready') throw new Error('exited before it was ready');
  }

  /**
   * GET `path` on the app's port (on the shared socket: its private probe port, so the answer is
   * this process's): the status, or undefined when no answer came in `timeoutMs`.
   */
  probe(path: string, timeoutMs: number): Promise<number | undefined> {
    const port = this.listen?.probePort ?? this.port;
    return new Promise((resolve) => {
      const request = http.get(
        { host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs },
        (response) => {
          response.resume();
          resolve(response.statusCode);
        },
      );
      request.on('timeout', () => request.destroy());
      request.on('error', () => resolve(undefined));
    });
  }

  /** Sends an IPC message if the app has a channel; false when it could not be sent. */
  send(message: Record<string, unknown>): boolean {
    const child = this.#child;
    if (child === undefined || !child.connected || this.state === 'exited') return false;
    try {
      child.send(message, (error) => {
        if (error !== null && error !== undefined) return; // the app went away meanwhile
      });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * `--balance socket`, an instance spawned to be admitted later (a reload's): lets it accept from
   * the shared socket. Nothing for an app without a listen channel.
   */
  admit(): void {
    if (this.state === 'exited') return;
    if (this.listen?.dealt === true) this.#joinRotation();
    else this.listen?.admit();
  }

  /** `--balance round-robin`: into the dealer's rotation, if the app takes connections over IPC. */
  #joinRotation(): void {
    const dealer = this.#opts.shared?.dealer;
    if (dealer !== undefined && this.listen?.dealt === true && this.state !== 'exited') dealer.add(this);
  }

  /** Hands a new connection to the app over IPC (`--balance round-robin`, see {@link Dealer}). */
  deal(socket: net.Socket, done: (error: Error | null) => void): void {
    const child = this.#child;
    if (child === undefined || !child.connected || this.state === 'exited') {
      done(new Error('the app process is gone'));
      return;
    }
    try {
      child.send({ type: 'bulwark:connection' }, socket, (error) => done(error ?? null));
    } catch (error) {
      done(error as Error);
    }
  }

  /**
   * `--balance socket`: asks the app to stop accepting from the shared socket and to close its
   * connections once their in-flight requests are answered. Resolves when it reported that no
   * connection is left, when it exited, or after `timeoutMs`; at once when it has no listen channel.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.#opts.shared?.dealer?.remove(this);
    const channel = this.listen;
    if (channel === undefined || channel.probePort === undefined || this.state === 'exited') return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      channel.drain(),
      this.exited,
      new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  /**
   * Stops the app process and whatever it started: SIGTERM to every one of them, SIGKILL after
   * `timeoutMs`. Resolves once the app process exited.
   */
  async stop(reason: string, timeoutMs: number): Promise<ExitInfo> {
    this.stopReason ??= reason;
    this.#opts.shared?.dealer?.remove(this);
    if (this.state !== 'exited') {
      this.state = 'stopping';
      void this.#signalAll('SIGTERM');
      const timer = setTimeout(() => void this.#signalAll('SIGKILL'), timeoutMs);
      const info = await this.exited;
      clearTimeout(timer);
      return info;
    }
    return this.exited;
  }

  /** SIGKILL to the app process and whatever it started, now (a hung app cannot shut down gracefully). */
  kill(reason: string): Promise<ExitInfo> {
    this.stopReason ??= reason;
    this.#opts.shared?.dealer?.remove(this);
    if (this.state !== 'exited') {
      this.state = 'stopping';
      void this.#signalAll('SIGKILL');
    }
    return this.exited;
  }

  /**
   * Sends `signal` to the app process (at once, while it runs) and to every other process it started
   * (once found); with 0, only looks. Whether any process was left to signal.
   */
  async #signalAll(signal: NodeJS.Signals | 0): Promise<boolean> {
    const child = this.#child;
    if (child?.pid === undefined) return false;
    if (!TRACK_BY_MARK) {
      try {
        process.kill(-child.pid, signal);
        return true;
      } catch {
        return false; // ESRCH: the group is gone
      }
    }
    const running = child.exitCode === null && child.signalCode === null;
    if (running && signal !== 0) child.kill(signal);
    // The app process is signalled once only: a second SIGTERM means "exit now" to many apps.
    const others = (await markedProcesses(this.#mark)).filter((pid) => !running || pid !== child.pid);
    if (signal !== 0) signalEach(others, signal);
    return running || others.length > 0;
  }

  /**
   * After the app process ended, whatever it started may still run (and hold its port): SIGTERM
   * them, SIGKILL after a second.
   */
  async #reapRest(): Promise<void> {
    if (!(await this.#signalAll('SIGTERM'))) return;
    for (let waited = 0; waited < 1000; waited += 50) {
      await sleep(50);
      if (!(await this.#signalAll(0))) return;
    }
    await this.#signalAll('SIGKILL');
  }
}

/**
 * `--balance round-robin`: the connection handed to a process that died before it acknowledged it.
 * Node keeps the supervisor's copy open until the acknowledgement, and when the process dies with
 * more handles queued behind it (the usual case under load) it never closes it: the client would
 * wait on a connection nobody serves. Closed here (Node's `_pendingMessage`, the field its own
 * acknowledgement handling clears), the client sees a reset, as for any request in flight in a
 * killed process.
 */
function closeUnacknowledged(child: ChildProcess | undefined): void {
  const pending = (child as { _pendingMessage?: { handle?: { close?: () => void } } | null } | undefined)
    ?._pendingMessage;
  if (pending === undefined || pending === null) return;
  pending.handle?.close?.();
  (child as { _pendingMessage?: unknown })._pendingMessage = null;
}

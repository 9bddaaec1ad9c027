import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import { onFreePort, type PortChoice } from './ports.js';
import { until } from './wait.js';

export { freePort } from './ports.js';

/** A spawned fixture with its output collected. */
export interface Spawned {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name) once the process ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once stderr or stdout contains `text`; rejects after `timeoutMs`. */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
}

/** Runs a TypeScript entry point with tsx, as a child process. */
export function spawnTs(entry: string, args: string[], env: NodeJS.ProcessEnv): Spawned {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of waiters) w();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of waiters) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(text, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const matches = () => (typeof text === 'string' ? (out + err).includes(text) : text.test(out + err));
        if (matches()) return resolve();
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${String(text)}; output:\n${out}\n${err}`)),
          timeoutMs,
        );
        waiters.push(() => {
          if (matches()) {
            clearTimeout(timer);
            resolve();
          }
        });
        void exited.then(() => {
          if (!matches()) {
            clearTimeout(timer);
            reject(new Error(`process exited before ${String(text)}; output:\n${out}\n${err}`));
          }
        });
      });
    },
  };
}

/**
 * Waits until `proc` prints `pattern` and returns the port its first group captured: for servers
 * started on port 0, e.g. `/listening on http:\/\/127\.0\.0\.1:(\d+)/` for the demo app.
 */
export async function listeningPort(proc: Spawned, pattern: RegExp, timeoutMs?: number): Promise<number> {
  await proc.waitFor(pattern, timeoutMs);
  const port = Number(pattern.exec(proc.stdout() + proc.stderr())?.[1]);
  if (!Number.isInteger(port) || port <= 0)
    throw new Error(`no port in the output matching ${String(pattern)}`);
  return port;
}

/**
 * For a fixture that can only bind the port given in its environment: spawns `entry` with
 * `PORT=<port>` and waits for `ready(port)`; when the port was taken meanwhile (the fixture died of
 * EADDRINUSE), spawns it again on a fresh port ({@link onFreePort}). A fixture that does not get
 * ready is killed before the error is rethrown.
 */
export function spawnOnFreePort(
  entry: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: (port: number) => string | RegExp,
  choice?: PortChoice,
): Promise<{ proc: Spawned; port: number }> {
  return onFreePort(async (port) => {
    const proc = spawnTs(entry, args, { ...env, PORT: String(port) });
    try {
      await proc.waitFor(ready(port));
    } catch (error) {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
      await proc.exited;
      throw error;
    }
    return { proc, port };
  }, choice);
}

/** One HTTP request over `agent`; resolves with the status and body or rejects with the socket error. */
export function request(
  agent: http.Agent,
  port: number,
  opts: { method?: string; path: string; body?: unknown },
  onRequest?: (req: http.ClientRequest) => void,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        agent,
        method: opts.method ?? 'GET',
        path: opts.path,
        headers:
          payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    onRequest?.(req);
    req.end(payload);
  });
}

/**
 * Resolves once everything written on the client `socket` (to 127.0.0.1) has been read by the
 * server process: the client's send queue and the server's receive queue of that connection are
 * both empty, per /proc/net/tcp (Linux only, like CI). For "the request is in flight" without a
 * fixed sleep: a request the server has not read yet is not in flight for it.
 */
export async function untilPeerRead(socket: net.Socket, timeoutMs = 20_000): Promise<void> {
  const local = socket.localPort;
  const remote = socket.remotePort;
  if (local === undefined || remote === undefined) throw new Error('socket not connected');
  await until(
    () => {
      const queues = tcpQueues();
      const client = queues.get(`${local}>${remote}`);
      const server = queues.get(`${remote}>${local}`);
      return client?.tx === 0 && server?.rx === 0;
    },
    timeoutMs,
    `the server read everything sent on port ${local}`,
  );
}

/** Send and receive queue sizes of every IPv4 TCP connection, by "localPort>remotePort". */
function tcpQueues(): Map<string, { tx: number; rx: number }> {
  const queues = new Map<string, { tx: number; rx: number }>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    // "sl local_address rem_address st tx_queue:rx_queue ...", addresses as HEXIP:HEXPORT.
    const [, localAddress, remoteAddress, , queue] = line.trim().split(/\s+/);
    if (localAddress === undefined || remoteAddress === undefined || queue === undefined) continue;
    const port = (address: string) => Number.parseInt(address.split(':')[1] ?? '', 16);
    const [tx, rx] = queue.split(':').map((hex) => Number.parseInt(hex, 16));
    queues.set(`${port(localAddress)}>${port(remoteAddress)}`, { tx: tx ?? -1, rx: rx ?? -1 });
  }
  return queues;
}

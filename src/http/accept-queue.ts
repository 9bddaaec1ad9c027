// Connections waiting to be accepted. The kernel completes a TCP handshake by itself and queues the
// connection on the listening socket until the process calls accept(). Node (libuv 1.45 and later)
// accepts one connection per turn of the event loop, so a loop near saturation, turning tens of
// times a second, can leave a burst of new connections there for seconds: before any of their
// requests is read, so before any hook, log line, latency metric or load shedding sees them
// (docs/benchmarks.md, the overload section). Linux shows each listening socket's queue in
// /proc/net/tcp and /proc/net/tcp6 (`rx_queue` of its line); elsewhere there is no figure.
import { open, readlink } from 'node:fs/promises';
import type { Server } from 'node:http';
import { Gauge, type Registry } from 'prom-client';
import type { HealthRegistry } from '../health/index.js';

/** Connections waiting at or above which the health check warns. */
export const ACCEPT_QUEUE_WARN = 32;
/** The check's name in the health report. */
const CHECK = 'http:acceptQueue';
const CHUNK = 64 * 1024;
/** The kernel's tables of TCP sockets (IPv4, IPv6) of this network namespace. */
const PROC_FILES = ['/proc/net/tcp', '/proc/net/tcp6'];
// A listening socket's line: local address and port, remote 0:0, state 0A (LISTEN), then
// tx_queue:rx_queue (rx: the connections waiting), and after uid and timeout, its inode.
const LISTEN_LINE =
  /^ *\d+: [0-9A-F]+:([0-9A-F]{4}) [0-9A-F]+:0000 0A [0-9A-F]{8}:([0-9A-F]{8}) \S+ \S+ +\d+ +\d+ +(\d+) /;

/** The identity of a listening socket: its inode when known (exact), else its port. */
export interface ListenSocket {
  port: number;
  inode?: number;
}

/**
 * Connections waiting in the accept queue of `socket`, or undefined where the kernel does not say
 * (not Linux). Reads only the listening sockets' lines, which the kernel lists first, not the
 * file's line per open connection. `files`: the tables to read (tests give their own).
 */
export function acceptQueue(
  socket: ListenSocket,
  files: readonly string[] = PROC_FILES,
): Promise<number | undefined> {
  return waitingOn([socket], files);
}

/** The connections waiting on any of `sockets`, summed: each table is read once for them all. */
async function waitingOn(
  sockets: readonly ListenSocket[],
  files: readonly string[] = PROC_FILES,
): Promise<number | undefined> {
  let found: number | undefined;
  for (const file of files) {
    const waiting = await queueIn(file, sockets);
    if (waiting !== undefined) found = (found ?? 0) + waiting;
  }
  return found;
}

const matches = (socket: ListenSocket, port: string, inode: string) =>
  socket.inode === undefined ? parseInt(port, 16) === socket.port : Number(inode) === socket.inode;

async function queueIn(file: string, sockets: readonly ListenSocket[]): Promise<number | undefined> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const buffer = Buffer.alloc(CHUNK);
    let waiting = 0;
    let rest = '';
    let first = true;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK);
      const text = rest + buffer.toString('latin1', 0, bytesRead);
      const lines = text.split('\n');
      rest = bytesRead === 0 ? '' : (lines.pop() ?? '');
      for (const line of first ? lines.slice(1) : lines) {
        if (line.trim() === '') continue;
        const match = LISTEN_LINE.exec(line);
        // Listening sockets come first: the first other line ends them.
        if (match === null) return waiting;
        const [, port = '', queued = '0', inode = ''] = match;
        if (sockets.some((socket) => matches(socket, port, inode))) waiting += parseInt(queued, 16);
      }
      first = false;
      if (bytesRead === 0) return waiting;
    }
  } finally {
    await handle.close();
  }
}

/** The listening socket of `server` (listening), by inode where the process's fd table shows it. */
export async function listenSocketOf(server: Server): Promise<ListenSocket | undefined> {
  const address = server.address();
  if (address === null || typeof address === 'string') return undefined;
  // Node's handle of the listening socket: `fd` is not in the type definitions, long stable on Unix.
  const fd = (server as Server & { _handle?: { fd?: number } | null })._handle?.fd;
  if (typeof fd === 'number' && fd >= 0) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/self/fd/${fd}`))?.[1];
      if (inode !== undefined) return { port: address.port, inode: Number(inode) };
    } catch {
      // No /proc: by port.
    }
  }
  return { port: address.port };
}

/**
 * Watches the accept queue of `server` while it listens: the gauge `bulwark_http_accept_queue`
 * (read at each scrape) and the health check `http:acceptQueue`, which warns from
 * {@link ACCEPT_QUEUE_WARN} connections waiting; both sum every server watched with the same
 * registries. Nothing where the kernel gives no figure.
 */
export function watchAcceptQueue(server: Server, deps: { registry: Registry; health: HealthRegistry }): void {
  let socket: ListenSocket | undefined;
  const queues = acceptQueues(deps.registry, deps.health);
  queues.add(() => socket);
  server.on('listening', () => {
    void listenSocketOf(server).then(async (found) => {
      // An inode came from /proc, so the kernel's tables are there; by port, try one read.
      if (found === undefined || (found.inode === undefined && (await acceptQueue(found)) === undefined))
        return;
      if (!server.listening) return;
      socket = found;
      queues.watch();
    });
  });
  server.on('close', () => (socket = undefined));
}

/** The accept queues of the servers watched with one registry: the gauge and the health check. */
interface AcceptQueues {
  /** A server's listening socket, undefined while it does not listen. */
  add(socket: () => ListenSocket | undefined): void;
  /** A server listens on a socket whose queue the kernel shows: the health check runs. */
  watch(): void;
}

const byRegistry = new WeakMap<Registry, AcceptQueues>();

function acceptQueues(registry: Registry, health: HealthRegistry): AcceptQueues {
  const known = byRegistry.get(registry);
  if (known !== undefined) return known;
  const servers = new Set<() => ListenSocket | undefined>();
  // One read of the kernel's tables for every server watched.
  const total = async () => {
    const sockets = [...servers].map((socket) => socket()).filter((s) => s !== undefined);
    return sockets.length === 0 ? 0 : ((await waitingOn(sockets)) ?? 0);
  };
  new Gauge({
    name: 'bulwark_http_accept_queue',
    help: 'New connections the kernel holds for the HTTP server that it has not accepted yet (Linux).',
    registers: [registry],
    async collect() {
      this.set(await total());
    },
  });
  let checking = false;
  const queues: AcceptQueues = {
    add: (socket) => servers.add(socket),
    watch: () => {
      if (checking) return;
      checking = true;
      health.register({
        name: CHECK,
        componentType: 'component',
        critical: false,
        intervalMs: 5000,
        check: async () => {
          const waiting = await total();
          if (waiting < ACCEPT_QUEUE_WARN)
            return { status: 'pass', observedValue: waiting, observedUnit: 'connections' };
          return {
            status: 'warn',
            observedValue: waiting,
            observedUnit: 'connections',
            output: `${waiting} new connections wait to be accepted: the event loop is too busy to take them (docs/protection.md)`,
          };
        },
      });
    },
  };
  byRegistry.set(registry, queues);
  return queues;
}

// New connections the server has not accepted yet: the kernel completes their handshakes and holds
// them on the listening socket while the event loop is busy. On a real listening socket: a client
// process connects while this process's event loop is busy (≥ 20 ms a turn, one connection
// accepted a turn), and the gauge and the health check read the queue from the kernel; once the
// loop idles again the server takes them all and the queue is 0. Linux only (the kernel's /proc/net/tcp).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ACCEPT_QUEUE_WARN, acceptQueue, listenSocketOf } from '../src/http/accept-queue.js';
import { testApp } from './helpers/app.js';
import { until } from './helpers/wait.js';

const LINUX = existsSync('/proc/net/tcp');
const CONNECTIONS = 100;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A client process that opens `count` connections to `port` and holds them until killed. */
function client(port: number, count: number): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const net = require('node:net'); const held = [];
       for (let i = 0; i < ${count}; i++) held.push(net.connect(${port}, '127.0.0.1').on('error', () => {}));
       setInterval(() => {}, 1000);`,
    ],
    { stdio: 'ignore' },
  );
  cleanups.push(() => void child.kill('SIGKILL'));
  return child;
}

/**
 * Blocks this process's event loop (nothing is accepted meanwhile) until `count` connections wait
 * on `port`, read from the kernel's table directly, or 10 s have passed.
 */
function blockUntilQueued(port: number, count: number): void {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const listening = new RegExp(`:${hex} [0-9A-F]+:0000 0A [0-9A-F]{8}:([0-9A-F]{8})`);
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    const match = listening.exec(readFileSync('/proc/net/tcp', 'latin1'));
    if (match !== null && parseInt(match[1] ?? '0', 16) >= count) return;
  }
}

/**
 * Keeps this process's event loop busy, as under load: every turn runs ≥ 20 ms of computing, so
 * it turns ~50 times a second and accepts one connection per turn (while idle, it would take a
 * waiting connection every few µs). Returns the function that stops it.
 */
function busyLoop(): () => void {
  let on = true;
  const turn = () => {
    const end = Date.now() + 20;
    while (Date.now() < end);
    if (on) setImmediate(turn);
  };
  setImmediate(turn);
  const stop = () => void (on = false);
  cleanups.push(stop);
  return stop;
}

/**
 * The check's result once a run of it gives `status` (runNow does nothing while a scheduled run is
 * still in flight, whose result may predate the state the test set up).
 */
async function checkUntil(app: FastifyInstance, status: string) {
  const read = () => app.bulwark.health.report().checks?.['http:acceptQueue']?.[0];
  await until(async () => {
    await app.bulwark.health.runNow('http:acceptQueue');
    return read()?.status === status;
  }, 5000);
  return read();
}

async function metricValue(app: FastifyInstance): Promise<number> {
  const text = await app.bulwark.metrics.registry.getSingleMetricAsString('bulwark_http_accept_queue');
  const line = text.split('\n').find((l) => l.startsWith('bulwark_http_accept_queue '));
  return Number(line?.split(' ')[1]);
}

describe.runIf(LINUX)('the accept queue (Linux)', () => {
  it('reads the connections waiting on a listening socket, by its inode', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const socket = await listenSocketOf(server as unknown as Parameters<typeof listenSocketOf>[0]);
    expect(socket?.inode).toBeGreaterThan(0);
    expect(await acceptQueue(socket!)).toBe(0);
    const accepted: net.Socket[] = [];
    server.on('connection', (s) => accepted.push(s));
    cleanups.push(() => accepted.forEach((s) => s.destroy()));
    const stop = busyLoop();
    client(socket!.port, CONNECTIONS);
    blockUntilQueued(socket!.port, CONNECTIONS);
    // The read takes a few turns, each of which accepts one connection.
    const waiting = (await acceptQueue(socket!)) ?? 0;
    expect(waiting).toBeGreaterThan(CONNECTIONS / 2);
    expect(waiting).toBeLessThanOrEqual(CONNECTIONS);
    // The same by port.
    expect(await acceptQueue({ port: socket!.port })).toBeGreaterThan(CONNECTIONS / 2);
    stop();
    await until(async () => (await acceptQueue(socket!)) === 0, 5000);
    expect(accepted.length).toBe(CONNECTIONS);
  });

  it('shows the queue as bulwark_http_accept_queue and warns in /health while connections wait', async () => {
    const { app } = await testApp();
    cleanups.push(() => app.close());
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address() as net.AddressInfo;
    // The check is registered once the server's socket has been found (asynchronously).
    await until(() => app.bulwark.health.report().checks?.['http:acceptQueue'] !== undefined, 5000);
    expect((await checkUntil(app, 'pass'))?.observedValue).toBe(0);
    expect(await metricValue(app)).toBe(0);

    const stop = busyLoop();
    client(address.port, CONNECTIONS);
    blockUntilQueued(address.port, CONNECTIONS);
    expect(await metricValue(app)).toBeGreaterThanOrEqual(ACCEPT_QUEUE_WARN);
    const check = await checkUntil(app, 'warn');
    expect(check?.observedValue).toBeGreaterThanOrEqual(ACCEPT_QUEUE_WARN);
    expect(check?.output).toMatch(/new connections wait to be accepted/);
    stop();

    await until(async () => (await metricValue(app)) === 0, 5000);
    expect((await checkUntil(app, 'pass'))?.observedValue).toBe(0);
  });
});

describe("the accept queue read from the kernel's table", () => {
  const HEADER =
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
  const hex = (n: number, width: number) => n.toString(16).toUpperCase().padStart(width, '0');
  /** One line as the kernel prints it (tcp4_seq_show's format). */
  const line = (sl: number, port: number, state: number, waiting: number, inode: number) =>
    `${String(sl).padStart(4)}: 0100007F:${hex(port, 4)} ${state === 0x0a ? '00000000:0000' : '0100007F:D431'} ${hex(state, 2)} ` +
    `00000000:${hex(waiting, 8)} 00:00000000 00000000  1000        0 ${inode} 1 0000000000000000 100 0 0 10 0\n`;

  it('reads past 64 KiB chunks, by inode or by port, and stops at the first connection', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-accept-queue-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // ~1 300 listening sockets (~170 KB: lines across two chunk boundaries), then connections.
    let table = HEADER;
    for (let i = 0; i < 1300; i++) table += line(i, 10_000 + i, 0x0a, 0, 500_000 + i);
    table += line(1300, 8080, 0x0a, 42, 777_777); // ours, far past the first chunk
    table += line(1301, 8080, 0x0a, 5, 777_778); // another socket on the port (another address)
    table += line(1302, 8080, 0x01, 9, 888_888); // a connection: the listening sockets are over
    table += line(1303, 8080, 0x0a, 1000, 777_777); // never read
    const tcp = path.join(dir, 'tcp');
    writeFileSync(tcp, table);
    expect(Buffer.byteLength(table)).toBeGreaterThan(2 * 64 * 1024);
    expect(await acceptQueue({ port: 8080, inode: 777_777 }, [tcp])).toBe(42);
    expect(await acceptQueue({ port: 8080 }, [tcp])).toBe(47);
    expect(await acceptQueue({ port: 9 }, [tcp])).toBe(0);
    // Both tables are summed; one that cannot be read adds nothing; none readable: no figure.
    const tcp6 = path.join(dir, 'tcp6');
    writeFileSync(tcp6, HEADER + line(0, 8080, 0x0a, 3, 777_777));
    expect(await acceptQueue({ port: 8080, inode: 777_777 }, [tcp, tcp6])).toBe(45);
    expect(await acceptQueue({ port: 8080, inode: 777_777 }, [tcp, path.join(dir, 'none')])).toBe(42);
    expect(await acceptQueue({ port: 8080 }, [path.join(dir, 'none')])).toBeUndefined();
  });
});

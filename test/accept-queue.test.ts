// New connections the server has not accepted yet: the kernel completes their handshakes and holds
// them on the listening socket while the event loop is busy. On a real listening socket: a client
// process connects while this process's event loop is busy (≥ 20 ms a turn, one connection
// accepted a turn), and the gauge and the health check read the queue from the kernel; once the
// loop idles again the server takes them all and the queue is 0. Linux only (the kernel's /proc/net/tcp).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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

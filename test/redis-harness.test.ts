// Proves the Redis fault harness against real redis-server processes, and pins down how ioredis
// reacts to each fault; the failover engine relies on these behaviours.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import net from 'node:net';
import type { Redis, RedisOptions } from 'ioredis';
import { describe, expect, it, onTestFinished } from 'vitest';
import { alive } from './helpers/proc.js';
import { redisClient, startRedis, uniquePrefix, type RedisServer } from './helpers/redis.js';

/** A server stopped when the current test finishes, whatever its state. */
async function server(): Promise<RedisServer> {
  const started = await startRedis();
  onTestFinished(() => started.stop());
  return started;
}

/** A connected test client, disconnected when the current test finishes. */
async function client(url: string, opts: RedisOptions = {}): Promise<Redis> {
  const connected = redisClient(url, opts);
  onTestFinished(() => connected.disconnect());
  await connected.connect();
  return connected;
}

/** The rejection of `promise` (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  const error: unknown = await promise.then(
    (value) => new Error(`expected a rejection, got ${String(value)}`),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  return error as Error & { code?: string };
}

/** The error of a raw TCP connect to the port, or `undefined` when it was accepted. */
function tcpConnectError(port: number): Promise<(Error & { code?: string }) | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', resolve);
  });
}

/** Resolves on the client's next `ready` (it reconnected and passed the ready check). */
function nextReady(redis: Redis): Promise<unknown> {
  // Not events.once: it rejects on the 'error' of each reconnect attempt made while the server is down.
  return new Promise((resolve) => redis.once('ready', resolve));
}

describe('startRedis', () => {
  it('starts a real, empty server on 127.0.0.1 that stores data', async () => {
    const redis = await server();
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(alive(redis.pid)).toBe(true);
    const c = await client(redis.url);
    expect(await c.dbsize()).toBe(0);
    const key = `${uniquePrefix('harness')}greeting`;
    await c.set(key, 'hello');
    expect(await c.get(key)).toBe('hello');
    // Persistence is off, so a kill can never bring data back.
    expect(await c.config('GET', 'save')).toEqual(['save', '']);
    expect(await c.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
  });

  it('gives every call a distinct key prefix', () => {
    const prefixes = new Set(Array.from({ length: 50 }, () => uniquePrefix()));
    expect(prefixes.size).toBe(50);
    expect(uniquePrefix('cache')).toMatch(/^cache:\d+:[0-9a-f]{8}:$/);
  });
});

describe('pause/resume (blackhole)', () => {
  it('times out commands on a connection that stays up, then runs them after resume', async () => {
    const redis = await server();
    const c = await client(redis.url, { commandTimeout: 200 });
    const key = `${uniquePrefix('pause')}k`;
    const id = await c.client('ID');

    await redis.pause();
    const error = await rejection(c.set(key, 'written-while-paused'));
    expect(error.message).toBe('Command timed out');
    expect(error.code).toBeUndefined(); // a timeout, not a socket error
    expect(c.status).toBe('ready');
    expect(c.stream.destroyed).toBe(false);
    // The kernel still completes handshakes into the listen backlog: new connections "work" too.
    expect(await tcpConnectError(redis.port)).toBeUndefined();

    await redis.resume();
    // Same TCP connection (same server-side client id), and the timed-out write was applied after
    // all: a client timeout says nothing about whether the server executed the command.
    expect(await c.client('ID')).toBe(id);
    expect(await c.get(key)).toBe('written-while-paused');
  });

  it('leaves a new client stuck in its handshake: connectTimeout does not cover it, socketTimeout does', async () => {
    const redis = await server();
    await redis.pause();

    const stuck = redisClient(redis.url, { connectTimeout: 100 });
    onTestFinished(() => stuck.disconnect());
    let settled = false;
    const connecting = stuck.connect().finally(() => (settled = true));
    // connectTimeout ends at the TCP handshake, which the kernel completes; ioredis then waits for
    // the ready check (INFO) with no deadline. Several connectTimeouts later it is still waiting.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(settled).toBe(false);
    expect(stuck.status).toBe('connect');
    // No offline queue: commands fail at once instead of joining the wait.
    expect((await rejection(stuck.ping())).message).toMatch(/enableOfflineQueue/);

    const bounded = redisClient(redis.url, { socketTimeout: 200, retryStrategy: () => null });
    onTestFinished(() => bounded.disconnect());
    expect((await rejection(bounded.connect())).message).toBe('Connection is closed.');

    await redis.resume();
    await connecting;
    expect(await stuck.ping()).toBe('PONG');
  });
});

describe('kill', () => {
  it('refuses new connections and fails open clients fast', async () => {
    const redis = await server();
    const c = await client(redis.url, { commandTimeout: 5_000 });
    const pid = redis.pid;

    await redis.pause();
    // Observed from the start: it rejects while kill() is still waiting for the port to close.
    const inFlight = rejection(c.get('in-flight'));
    await redis.kill();
    expect(alive(pid)).toBe(false);
    // The reply can never come; maxRetriesPerRequest 0 fails it on the close, not at commandTimeout.
    expect((await inFlight).name).toBe('MaxRetriesPerRequestError');
    expect(c.status).toBe('reconnecting');
    expect((await rejection(c.get('k'))).message).toMatch(/enableOfflineQueue/);

    expect((await tcpConnectError(redis.port))?.code).toBe('ECONNREFUSED');
    // ioredis reports ECONNREFUSED only as an 'error' event; connect() rejects with a generic close.
    const fresh = redisClient(redis.url, { retryStrategy: () => null });
    onTestFinished(() => fresh.disconnect());
    const errors: (Error & { code?: string })[] = [];
    fresh.on('error', (e: Error) => errors.push(e));
    expect((await rejection(fresh.connect())).message).toBe('Connection is closed.');
    expect(errors.map((e) => e.code)).toContain('ECONNREFUSED');

    await redis.kill(); // already down: a no-op
  });
});

describe('restart', () => {
  it('brings an empty server back on the same port, and open clients reconnect by themselves', async () => {
    const redis = await server();
    const c = await client(redis.url);
    const key = `${uniquePrefix('restart')}k`;
    await c.set(key, 'before');
    const { port, url } = redis;
    const oldPid = redis.pid;

    await redis.kill();
    const reconnected = nextReady(c);
    await redis.restart();
    expect(redis.port).toBe(port);
    expect(redis.url).toBe(url);
    expect(redis.pid).not.toBe(oldPid);
    expect(alive(redis.pid)).toBe(true);

    await reconnected;
    expect(await c.get(key)).toBeNull();
    const fresh = await client(redis.url);
    expect(await fresh.dbsize()).toBe(0);
  });

  it('replaces a server that is still running, even a paused one', async () => {
    const redis = await server();
    const oldPid = redis.pid;
    await redis.pause();
    await redis.restart();
    expect(alive(oldPid)).toBe(false);
    expect(await (await client(redis.url)).ping()).toBe('PONG');
  });

  it('waits for a port that is briefly held by someone else', async () => {
    const redis = await server();
    await redis.kill();
    const squatter = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(redis.port, '127.0.0.1', resolve));
    setTimeout(() => squatter.close(), 300);
    await redis.restart();
    expect(await (await client(redis.url)).ping()).toBe('PONG');
  });
});

describe('flap', () => {
  it('kills and restarts for 3 cycles and ends up; clients see every outage', async () => {
    const redis = await server();
    const c = await client(redis.url);
    let closes = 0;
    c.on('close', () => closes++);
    const pid = redis.pid;

    const started = Date.now();
    await redis.flap({ upMs: 300, downMs: 300, cycles: 3 }).done;

    // Lower bound only (with slack for timer rounding): the harness waits 3 × (300 + 300) ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_700);
    expect(redis.pid).not.toBe(pid);
    expect(alive(pid)).toBe(false);
    // Each kill closes the connection, and each failed reconnect attempt while down closes again.
    expect(closes).toBeGreaterThanOrEqual(3);
    expect(await (await client(redis.url)).ping()).toBe('PONG');
  });

  it('in pause mode keeps connections and data', async () => {
    const redis = await server();
    const c = await client(redis.url);
    const key = `${uniquePrefix('flap')}k`;
    await c.set(key, 'kept');
    const id = await c.client('ID');
    const pid = redis.pid;

    await redis.flap({ upMs: 100, downMs: 200, cycles: 2, mode: 'pause' }).done;
    expect(redis.pid).toBe(pid);
    expect(await c.client('ID')).toBe(id);
    expect(await c.get(key)).toBe('kept');
  });

  it('stop() ends a flap early with the server up', { timeout: 60_000 }, async () => {
    const redis = await server();
    // Periods far longer than a stop() that cuts them short: one that sat a period out is told apart.
    const periodMs = 60_000;
    const flap = redis.flap({ upMs: periodMs, downMs: periodMs, cycles: 100 });
    expect(() => redis.flap({ upMs: 10, downMs: 10, cycles: 1 })).toThrow(/already flapping/);
    // Let it go down first, so stop() has to bring it back.
    while ((await tcpConnectError(redis.port)) === undefined) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    let timer: NodeJS.Timeout | undefined;
    const periodOver = new Promise<string>(
      (resolve) => (timer = setTimeout(resolve, periodMs / 2, 'sat it out')),
    );
    const stopped = flap
      .stop()
      .then(() => flap.done)
      .then(() => 'stopped');
    expect(await Promise.race([stopped, periodOver])).toBe('stopped');
    clearTimeout(timer);
    expect(await (await client(redis.url)).ping()).toBe('PONG');
  });
});

describe('stop', () => {
  it('is idempotent, works while paused, and leaves no process or directory behind', async () => {
    const redis = await startRedis();
    const { pid, dir } = redis;
    expect(existsSync(dir)).toBe(true);
    await redis.pause();
    await redis.stop();
    await redis.stop();
    expect(alive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    expect((await tcpConnectError(redis.port))?.code).toBe('ECONNREFUSED');
    await expect(redis.restart()).rejects.toThrow(/already stopped/);
  });

  it('stops a server that is flapping', async () => {
    const redis = await startRedis();
    const flap = redis.flap({ upMs: 50, downMs: 50, cycles: 100 });
    await new Promise((resolve) => setTimeout(resolve, 120));
    await redis.stop();
    await flap.done;
    expect(alive(redis.pid)).toBe(false);
    expect((await tcpConnectError(redis.port))?.code).toBe('ECONNREFUSED');
  });

  it('kills servers a test process forgot to stop when that process exits', async () => {
    const script = [
      "const { startRedis } = await import('./test/helpers/redis.ts');",
      'const s = await startRedis();',
      'await s.pause();',
      'console.log(JSON.stringify({ pid: s.pid, port: s.port, dir: s.dir }));',
      'process.exit(0);',
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    const leaked = JSON.parse(out) as { pid: number; port: number; dir: string };
    // The orphan may linger as a zombie if PID 1 does not reap, but it holds no socket or memory.
    const deadline = Date.now() + 5_000;
    while (alive(leaked.pid) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(alive(leaked.pid)).toBe(false);
    expect((await tcpConnectError(leaked.port))?.code).toBe('ECONNREFUSED');
    expect(existsSync(leaked.dir)).toBe(false);
  });
});

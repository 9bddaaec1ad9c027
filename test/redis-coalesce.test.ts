// The shared Redis client's write coalescing (src/redis/coalesce.ts), against a real redis-server:
// the commands of one turn of the event loop reach the socket in two writes (the first at once, the
// rest together), in order, and every one is answered; a lone command goes out at once; a
// reconnected client keeps coalescing; so do the BullMQ driver's own connections.
import { mkdtempSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { pino } from 'pino';
import { coalesceWrites } from '../src/redis/coalesce.js';
import { connectRedis } from '../src/redis/connection.js';
import { createBulwark } from '../src/runtime/create.js';
import { startRedis, type RedisServer } from './helpers/redis.js';

let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

/**
 * Counts the writes a socket hands to the kernel (`_write` for one chunk, `_writev` for several):
 * of `target` itself, or, given `Socket.prototype`, of every socket that `counts` picks until
 * `restore()`.
 */
function countWrites(
  target: Socket,
  counts: (socket: Socket) => boolean = () => true,
): { readonly count: number; restore(): void } {
  const internal = target as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
  const originals = { _write: internal._write, _writev: internal._writev };
  const counter = {
    count: 0,
    restore: () => Object.assign(internal, originals),
  };
  for (const name of ['_write', '_writev'] as const)
    internal[name] = function (this: Socket, ...args: unknown[]) {
      if (counts(this)) counter.count += 1;
      return originals[name].apply(this, args);
    };
  return counter;
}

async function client(coalesce: boolean): Promise<Redis> {
  const c = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  if (coalesce) coalesceWrites(c);
  onTestFinished(() => c.disconnect());
  await c.connect();
  return c;
}

/** Issues 50 SETs and a read of each in one turn; resolves with the reads. */
function burst(c: Redis, prefix: string): Promise<(string | null)[]> {
  const writes = Array.from({ length: 50 }, (_, i) => c.set(`${prefix}:${i}`, String(i)));
  const reads = Array.from({ length: 50 }, (_, i) => c.get(`${prefix}:${i}`));
  return Promise.all(writes).then(() => Promise.all(reads));
}

describe('coalesceWrites on a real server', () => {
  it('sends the first command of a turn at once and the rest in one write, each answered in order', async () => {
    const c = await client(true);
    const writes = countWrites(c.stream);
    const values = await burst(c, 'coalesced');
    expect(values).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
    expect(writes.count).toBe(2);
  });

  it('without it, ioredis writes command by command (what the test above rules out)', async () => {
    const c = await client(false);
    const writes = countWrites(c.stream);
    await burst(c, 'plain');
    expect(writes.count).toBeGreaterThan(10);
  });

  it('writes a lone command at once, and one issued from a setImmediate callback', async () => {
    const c = await client(true);
    const writes = countWrites(c.stream);
    const ping = c.ping();
    expect(writes.count).toBe(1); // written before this turn ends
    expect(await ping).toBe('PONG');
    await new Promise((resolve) => setImmediate(resolve));
    expect(await c.incr('coalesced:lone')).toBe(1);
    // From a setImmediate callback: goes out in the next turn's check phase, still answered.
    const fromImmediate = await new Promise<number>((resolve, reject) =>
      setImmediate(() => void c.incr('coalesced:lone').then(resolve, reject)),
    );
    expect(fromImmediate).toBe(2);
    expect(writes.count).toBe(3);
  });

  it("is on for Bulwark's shared client (connectRedis)", async () => {
    const dependency = await connectRedis(redis.url, pino({ level: 'silent' }));
    onTestFinished(() => dependency.close());
    const writes = countWrites(dependency.client.stream);
    expect(await burst(dependency.client, 'shared')).toHaveLength(50);
    expect(writes.count).toBe(2);
  });

  it('keeps coalescing on the new socket after a reconnect', async () => {
    const c = await client(true);
    const first = c.stream;
    const ready = new Promise((resolve) => c.once('ready', resolve));
    c.disconnect(true);
    await ready;
    expect(c.stream).not.toBe(first);
    const writes = countWrites(c.stream);
    expect(await burst(c, 'reconnected')).toHaveLength(50);
    expect(writes.count).toBe(2);
  });

  it('patches a client that is already connected, once however often it is called', async () => {
    const c = await client(false);
    coalesceWrites(c);
    coalesceWrites(c);
    const writes = countWrites(c.stream);
    expect(await burst(c, 'late')).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
    expect(writes.count).toBe(2);
  });

  it("is on for the BullMQ driver's own connections: a worker finishing many jobs at once", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-coalesce-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const bulwark = await createBulwark({
      env: { REDIS_URL: redis.url, BULWARK_DATA_DIR: dir, LOG_LEVEL: 'silent' },
    });
    onTestFinished(() => bulwark.close());
    const jobs = 400;
    let ran = 0;
    let allRan: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (allRan = resolve));
    bulwark.queues.process(
      'coalesced',
      async () => {
        ran += 1;
        if (ran === jobs) allRan();
      },
      { concurrency: 50 },
    );
    // Every write this process hands the kernel for a socket to Redis, whoever owns the socket.
    const writes = countWrites(Socket.prototype, (socket) => socket.remotePort === redis.port);
    try {
      await Promise.all(Array.from({ length: jobs }, (_, i) => bulwark.queues.add('coalesced', { i })));
      await done;
    } finally {
      writes.restore();
    }
    // BullMQ finishes each job with a script call (which also takes the next job): one write per
    // job without the coalescing, ~1 per turn with it.
    expect(writes.count, String(writes.count)).toBeLessThan(jobs * 0.6);
  });
});

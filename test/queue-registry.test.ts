import { rmSync } from 'node:fs';
import { Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectionOptions, QUEUE_REGISTRY } from '../src/queue/bullmq-queues.js';
import { PREFIX } from '../src/queue/bullmq-worker.js';
import { redisClient, startRedis, type RedisServer } from './helpers/redis.js';
import { redisDriver } from './helpers/queue.js';
import { until } from './helpers/wait.js';

// Reads over every queue (the state gauge at each scrape, the admin API) used to SCAN the whole
// keyspace for BullMQ's `:meta` keys: a cost that grows with every key of the database, each job
// being one, paid at every scrape by every instance. The driver now names its queues in a Redis set.

let redis: RedisServer;
const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await admin((c) => c.flushall());
});
afterAll(async () => {
  await redis.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs `fn` on a plain client of the test's Redis. */
async function admin<T>(fn: (client: ReturnType<typeof redisClient>) => Promise<T>): Promise<T> {
  const client = redisClient(redis.url);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    client.disconnect();
  }
}

/** The BullMQ driver of one instance, on its own store and spool, closed after the test. */
function instance(name: string) {
  return redisDriver(redis.url, name, { dirs, closers });
}

/** Calls of `command` Redis has served since the stats were last reset. */
async function calls(command: string): Promise<number> {
  const info = await admin((c) => c.info('commandstats'));
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
}

describe('the BullMQ driver names its queues in a registry', () => {
  it('reads over every queue find another instance’s queues without scanning the keyspace', async () => {
    const a = await instance('a');
    const b = await instance('b');
    await a.queues.add('alpha', { n: 1 });
    await b.queues.add('beta', { n: 1 });
    await b.queues.add('beta', { n: 2 });
    // Keys of the rest of the application, which a scan would walk through.
    await admin((c) => c.mset(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`app:${i}`, 'x']))));
    await admin((c) => c.config('RESETSTAT'));

    const counts = await a.queues.counts();
    expect(counts.get('alpha')).toMatchObject({ waiting: 1 });
    expect(counts.get('beta')).toMatchObject({ waiting: 2 });
    expect((await a.queues.oldestWaiting()).has('beta')).toBe(true);
    expect(await calls('scan')).toBe(0);
    expect(await admin((c) => c.smembers(QUEUE_REGISTRY))).toEqual(expect.arrayContaining(['alpha', 'beta']));
  });

  it('a read names no queue that has no jobs (an admin call with a mistyped name)', async () => {
    const a = await instance('a');
    await a.queues.add('real', { n: 1 });
    await a.queues.counts('mistyped');
    expect(await admin((c) => c.smembers(QUEUE_REGISTRY))).toEqual(['real']);
  });

  it('queues made before the registry are found by one scan in the background, then never scanned for again', async () => {
    const legacy = new Queue('legacy', { connection: connectionOptions(redis.url), prefix: PREFIX });
    await legacy.add('job', { n: 1 });
    await legacy.close();
    const a = await instance('a');

    await until(async () => (await a.queues.counts()).get('legacy')?.waiting === 1, 5000, 'legacy counted');
    await admin((c) => c.config('RESETSTAT'));
    await a.queues.counts();
    await a.queues.counts();
    expect(await calls('scan')).toBe(0);
  });

  it('after Redis restarts empty, the next add names its queue again', { timeout: 30_000 }, async () => {
    const a = await instance('a');
    await a.queues.add('again', { n: 1 });
    expect(await admin((c) => c.smembers(QUEUE_REGISTRY))).toEqual(['again']);

    await redis.restart();
    await until(
      async () => {
        await a.queues.add('again', { n: 2 });
        return (await admin((c) => c.smembers(QUEUE_REGISTRY))).includes('again');
      },
      15_000,
      'named again',
    );
  });
});

import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createBulwark, type Bulwark } from '../src/runtime/create.js';
import { redisClient, startRedis, type RedisServer } from './helpers/redis.js';

async function instance(redisUrl: string): Promise<Bulwark> {
  return createBulwark({
    env: {},
    redisUrl,
    store: { sqliteFile: ':memory:' },
    logLevel: 'silent',
    defaultMetrics: false,
  });
}

async function eventually<T>(read: () => Promise<T>, want: T, timeoutMs = 3000): Promise<void> {
  const started = Date.now();
  let last: T = await read();
  while (JSON.stringify(last) !== JSON.stringify(want)) {
    if (Date.now() - started > timeoutMs)
      throw new Error(`still ${JSON.stringify(last)}, wanted ${JSON.stringify(want)}`);
    await new Promise((r) => setTimeout(r, 10));
    last = await read();
  }
}

describe('cross-instance L1 invalidation (real redis-server)', () => {
  let redis: RedisServer;
  let a: Bulwark;
  let b: Bulwark;
  beforeAll(async () => {
    redis = await startRedis();
    a = await instance(redis.url);
    b = await instance(redis.url);
    // Both subscribed before any test publishes: an invalidation sent earlier would not be heard.
    await eventually(async () => [a.cache.listening, b.cache.listening], [true, true]);
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    await redis.stop();
  });

  /** Every message on the cache's invalidation channel from now on, in the order Redis delivers them. */
  async function overhear(): Promise<Record<string, unknown>[]> {
    const heard: Record<string, unknown>[] = [];
    const listener = redisClient(redis.url);
    onTestFinished(() => listener.disconnect());
    listener.on('message', (_channel: string, text: string) =>
      heard.push(JSON.parse(text) as Record<string, unknown>),
    );
    await listener.connect();
    await listener.subscribe('bulwark:cache:invalidate:default');
    return heard;
  }

  it('an update on one instance replaces the value in the other instance’s L1', async () => {
    const heard = await overhear();
    await a.cache.set('k', 'v1');
    expect(await b.cache.get('k')).toBe('v1'); // now in b's L1
    await a.cache.set('k', 'v2');
    await eventually(() => b.cache.get('k'), 'v2', 1000);
    await a.cache.delete('k');
    await eventually(() => b.cache.get('k'), undefined, 1000);
    // One announcement per change, from a, naming the key, in order; b's read-through fill announces nothing.
    const change = { origin: a.instanceId, keys: ['k'] };
    await eventually(async () => heard, [change, change, change], 5000);
  });

  it('a tag invalidation on one instance reaches the other instance’s L1', async () => {
    await a.cache.set('t1', 1, { tags: ['grp'] });
    expect(await b.cache.get('t1')).toBe(1);
    const heard = await overhear();
    await a.cache.deleteTag('grp');
    await eventually(() => b.cache.get('t1'), undefined, 1000);
    await eventually(async () => heard, [{ origin: a.instanceId, tag: 'grp' }], 5000);
  });

  it('a getOrSet fill reaches Redis behind its answer, and a delete made right after it still wins', async () => {
    const reader = redisClient(redis.url);
    onTestFinished(() => reader.disconnect());
    await reader.connect();
    expect(await a.cache.getOrSet('filled', () => 'made')).toBe('made');
    await a.cache.settled();
    expect(JSON.parse((await reader.get('bulwark:cache:v:filled')) ?? 'null')).toMatchObject({
      value: 'made',
    });
    expect(await b.cache.get('filled')).toBe('made');
    // The fill's SET is on the connection before getOrSet answers, so the DEL that follows lands after it.
    expect(await a.cache.getOrSet('gone', () => 'briefly')).toBe('briefly');
    await a.cache.delete('gone');
    await a.cache.settled();
    expect(await reader.get('bulwark:cache:v:gone')).toBeNull();
    expect(await b.cache.get('gone')).toBeUndefined();
  });

  it('after the bus drops and returns, L1 entries from before are not trusted', async () => {
    await a.cache.set('old', 'stale-after-restart');
    expect(await b.cache.get('old')).toBe('stale-after-restart'); // in b's L1
    await redis.kill();
    await redis.restart(); // empty: the shared value is gone
    await eventually(async () => b.dependencies['redis']?.mode, 'primary', 5000);
    await eventually(async () => b.cache.listening, true, 5000);
    // Listening again: L1 is consulted again, and must no longer hold the pre-drop entry.
    expect(await b.cache.get('old')).toBeUndefined();
  });
});

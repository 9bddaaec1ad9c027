import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { EmbeddedJobQueue, RedisJobQueue, type RedisJobQueueOptions } from '../../src/queue/index.js';
import { connectRedis } from '../../src/redis/connection.js';
import { createStore } from '../../src/runtime/store.js';

/** Where a test's {@link redisDriver}s are cleaned up: temp dirs removed, closers run after each test. */
export interface DriverCleanup {
  dirs: string[];
  closers: (() => Promise<void>)[];
}

/**
 * The BullMQ driver of one instance on `redisUrl`, on its own store and spool (SQLite in a temp dir),
 * as createBulwark wires it (the spool shares the driver's metrics and clock); `cleanup` closes it.
 */
export async function redisDriver(
  redisUrl: string,
  name: string,
  cleanup: DriverCleanup,
  extra: Partial<RedisJobQueueOptions> = {},
) {
  const dir = mkdtempSync(path.join(tmpdir(), `bulwark-queue-${name}-`));
  cleanup.dirs.push(dir);
  const store = await createStore({ dataDir: dir });
  const redisDep = await connectRedis(redisUrl, pino({ level: 'silent' }));
  const spool = new EmbeddedJobQueue({
    store,
    pollMs: 20,
    ...(extra.metrics ? { metrics: extra.metrics } : {}),
    ...(extra.now ? { now: extra.now } : {}),
  });
  const queues = new RedisJobQueue({
    url: redisUrl,
    failover: redisDep.failover,
    client: redisDep.client,
    spool,
    store,
    instanceId: `${name}-test`,
    ...extra,
  });
  cleanup.closers.push(async () => {
    await queues.close(1000);
    redisDep.close();
    await store.close();
  });
  return { store, redisDep, spool, queues };
}

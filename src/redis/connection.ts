import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Failover } from '../failover/index.js';
import { isBulwarkError } from '../errors/index.js';
import { coalesceWrites } from './coalesce.js';

/** The shared Redis connection of a Bulwark instance and the failover that guards it. */
export interface RedisDependency {
  readonly client: Redis;
  readonly failover: Failover;
  /** Stops probing and drops the connection (in-flight commands reject). */
  close(): void;
}

/**
 * Connects to Redis in the background and returns at once: Bulwark boots with Redis down and
 * attaches when it appears. The client is set up so that an outage costs nothing but the
 * failover's deadline: no offline queue (commands fail at once while disconnected), no per-command
 * retries, quick reconnects (≤ 500 ms apart, so failback can happen within 2 s), and a command
 * timeout that reaps commands abandoned on a blackholed server; a turn's commands go out in at
 * most two socket writes ({@link coalesceWrites}). Connection errors are logged at most once per
 * outage instead of crashing the process as an unhandled `error` event would.
 */
export async function connectRedis(url: string, logger: Logger): Promise<RedisDependency> {
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    commandTimeout: 1000,
    retryStrategy: (times) => Math.min(times * 50, 500),
  });
  coalesceWrites(client);
  let reportedDown = false;
  client.on('error', (error: Error) => {
    if (reportedDown) return;
    reportedDown = true;
    logger.warn({ dependency: 'redis', err: error }, 'redis connection error (logged once per outage)');
  });
  client.on('ready', () => {
    reportedDown = false;
  });
  // Give the first connection a moment so a healthy Redis is primary from the start; a down or
  // blackholed one costs boot at most this long (failures surface through the probe and 'error').
  const connecting = client.connect().catch(() => undefined);
  let waited: NodeJS.Timeout | undefined;
  await Promise.race([connecting, new Promise((resolve) => (waited = setTimeout(resolve, 500)))]);
  clearTimeout(waited);

  const failover = new Failover({
    name: 'redis',
    probe: () => client.ping(),
    // Catalogue errors (a bad value, bad options) are the caller's, not Redis's fault.
    isFailure: (error) => !isBulwarkError(error),
  });
  await failover.start();
  return {
    client,
    failover,
    close() {
      failover.close();
      client.disconnect();
    },
  };
}

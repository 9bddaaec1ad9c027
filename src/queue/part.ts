import type { Part } from '../parts/index.js';
import type { RedisDependency } from '../redis/connection.js';
import type { Store } from '../store/types.js';
import type { EmbeddedJobQueue, EmbeddedJobQueueOptions } from './embedded.js';
import type { RedisJobQueue, RedisJobQueueOptions } from './redis.js';
import type { JobOptions, JobQueue } from './types.js';

/** Job queue tuning: lease, poll interval, claim batch of the embedded queue; the BullMQ driver's own. */
export type QueuePartOptions = Pick<EmbeddedJobQueueOptions, 'leaseMs' | 'pollMs' | 'claimBatch'> & {
  redis?: Pick<RedisJobQueueOptions, 'keepCompletedMs' | 'replayIntervalMs' | 'stallMs' | 'adminDeadlineMs'>;
};

/**
 * Durable job queues: the embedded queue in the store; with Redis, BullMQ behind the failover with
 * the embedded queue as its outage spool (and its schedules' occurrences added through BullMQ while
 * Redis is up), following the flag `bulwark.queues.redis`. On close, running jobs get half the
 * shutdown budget, then go back to the queue for the next start.
 */
export function queuePart(
  options: QueuePartOptions = {},
): Part<'queues', JobQueue, { store: Store; redis: RedisDependency | undefined }> {
  const { redis: redisOptions, ...embeddedOptions } = options;
  let removeBacklog: (() => void) | undefined;
  return {
    name: 'queues',
    needs: ['store', 'redis'],
    checks: [],
    migrations: async (engine) => (await import('./migrations.js')).queueMigrations(engine),
    flags: (settings) =>
      settings.redisUrl === undefined
        ? []
        : [
            {
              key: 'bulwark.queues.redis',
              description: 'BullMQ for new jobs. Off: jobs go to the embedded queue.',
            },
          ],
    async start({ store, redis }, { settings, metrics, logger, instanceId }) {
      // The implementation loads when the part starts: a command that needs no queue never loads it.
      const [{ EmbeddedJobQueue }, { QueueMetrics }] = await Promise.all([
        import('./embedded.js'),
        import('./metrics.js'),
      ]);
      const queueMetrics = new QueueMetrics(metrics.registry);
      // Schedules add their occurrences through BullMQ once it exists (it is made after its spool).
      const through: { bullmq?: RedisJobQueue } = {};
      const embedded: EmbeddedJobQueue = new EmbeddedJobQueue({
        store,
        instanceId,
        metrics: queueMetrics,
        logger,
        ...embeddedOptions,
        ...(redis === undefined
          ? {}
          : {
              schedulerAdd: (q: string, data: unknown, o: JobOptions) =>
                (through.bullmq ?? embedded).add(q, data, o),
            }),
      });
      if (redis === undefined || settings.redisUrl === undefined) return embedded;
      // The spool's jobs not yet run or moved: what goes to BullMQ once Redis is back.
      removeBacklog = redis.failover.addBacklog({
        name: 'queue spool',
        pending: async () => {
          let waiting = 0;
          for (const c of (await embedded.counts()).values()) waiting += c.waiting + c.delayed + c.retrying;
          return waiting;
        },
      });
      // Loaded only with Redis: BullMQ is a large module graph an embedded service never needs.
      const { RedisJobQueue } = await import('./redis.js');
      through.bullmq = new RedisJobQueue({
        url: settings.redisUrl,
        failover: redis.failover,
        client: redis.client,
        spool: embedded,
        store,
        instanceId,
        metrics: queueMetrics,
        logger,
        ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
        ...redisOptions,
      });
      return through.bullmq;
    },
    close: (queues, { settings }) => {
      removeBacklog?.();
      return queues.close(Math.floor(settings.shutdownTimeoutMs / 2));
    },
    follow: (queues): Record<string, (on: boolean) => void> =>
      isRedisQueue(queues) ? { 'bulwark.queues.redis': (on) => (queues.redisEnabled = on) } : {},
  };
}

/** BullMQ's driver, told apart without loading it. */
function isRedisQueue(queues: JobQueue): queues is RedisJobQueue {
  return 'redisEnabled' in queues;
}

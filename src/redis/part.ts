import type { Part } from '../parts/index.js';
import type { RedisDependency } from './connection.js';

/**
 * Redis with `REDIS_URL` (else off: undefined), behind its failover, which every Redis user
 * shares; the flag `bulwark.redis` is its kill switch (off forces the embedded fallbacks).
 */
export function redisPart(): Part<'redis', RedisDependency | undefined> {
  return {
    name: 'redis',
    needs: [],
    // Registered by observeFailover (`<failover name>:mode`).
    checks: ['redis:mode'],
    flags: (settings) =>
      settings.redisUrl === undefined
        ? []
        : [
            {
              key: 'bulwark.redis',
              description: 'Redis. Off: every Redis user runs on its embedded fallback (kill switch).',
            },
          ],
    async start(_needs, { settings, metrics, health, logger }) {
      if (settings.redisUrl === undefined) return undefined;
      // Loaded only with REDIS_URL: ioredis is a large module graph an embedded service never needs.
      const [{ connectRedis }, { observeFailover }] = await Promise.all([
        import('./connection.js'),
        import('../failover/index.js'),
      ]);
      const redis = await connectRedis(settings.redisUrl, logger);
      observeFailover(redis.failover, { metrics, health, logger });
      return redis;
    },
    close: (redis) => redis?.close(),
    // Never called with undefined (a part that is off follows nothing).
    follow: (redis) => ({ 'bulwark.redis': (on) => redis?.failover.setForced(!on) }),
  };
}

import type { Part } from '../parts/index.js';
import type { RedisDependency } from '../redis/connection.js';
import type { RateLimiter, RateLimitPolicy } from './types.js';

/** The policy used when none is configured: 100 points per second. */
export const DEFAULT_RATE_LIMIT_POLICY: RateLimitPolicy = { name: 'default', limit: 100, windowMs: 1000 };

/** Browser error reports accepted per client network (the `/errors/browser` route). */
export const BROWSER_ERRORS_POLICY: RateLimitPolicy = {
  name: 'bulwark.browser-errors',
  limit: 30,
  windowMs: 60_000,
};

/** The rate-limit policies and which one `consume()` uses without a name (default the first). */
export interface RateLimitPartOptions {
  policies?: RateLimitPolicy[];
  defaultPolicy?: string;
}

/**
 * Rate limiting: on Redis when there is Redis (each instance falls back to its share of the limit
 * while Redis is down), else in memory; the given policies (default {@link DEFAULT_RATE_LIMIT_POLICY})
 * plus {@link BROWSER_ERRORS_POLICY}. Follows the flag `bulwark.ratelimit`.
 */
export function rateLimitPart(
  options: RateLimitPartOptions = {},
): Part<'rateLimiter', RateLimiter, { redis: RedisDependency | undefined }> {
  return {
    name: 'rateLimiter',
    needs: ['redis'],
    checks: [],
    flags: () => [
      {
        key: 'bulwark.ratelimit',
        description: 'Rate limiting. Off: every request is admitted, no rate-limit headers.',
      },
    ],
    // The implementation (rate-limiter-flexible) loads when the part starts.
    start: async ({ redis }, { metrics, instanceId }) =>
      (await import('./limiter.js')).createRateLimiter({
        policies: [...(options.policies ?? [DEFAULT_RATE_LIMIT_POLICY]), BROWSER_ERRORS_POLICY],
        ...(options.defaultPolicy === undefined ? {} : { defaultPolicy: options.defaultPolicy }),
        ...(redis === undefined ? {} : { redis: { client: redis.client, failover: redis.failover } }),
        instanceId,
        registry: metrics.registry,
      }),
    // Before Redis closes (it is needed first, so closed after): removes this instance from the live set.
    close: (limiter) => limiter.close(),
    follow: (limiter) => ({ 'bulwark.ratelimit': (on) => (limiter.enabled = on) }),
  };
}

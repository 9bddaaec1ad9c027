export { createRateLimiter, type RateLimiterOptions } from './limiter.js';
export { hashApiKey, keyFrom, type KeyBy } from './keys.js';
export { rateLimit, type RateLimitPluginOptions, type RouteRateLimit } from './plugin.js';
export { TopOffenders } from './offenders.js';
export { RateLimitMetrics } from './metrics.js';
export type * from './types.js';

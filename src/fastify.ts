export { bulwark, bulwark as default, fastifyOptions, type BulwarkPluginOptions } from './http/plugin.js';
export { toHttpError, type ErrorBody } from './http/error-handler.js';
export { rateLimit, type RateLimitPluginOptions, type RouteRateLimit } from './ratelimit/index.js';

export {
  bulwark,
  bulwark as default,
  bulwarkAdmin,
  bulwarkAdminRoutes,
  bulwarkBrowserErrors,
  bulwarkConsole,
  bulwarkCore,
  bulwarkProtection,
  bulwarkRateLimit,
  bulwarkRequestFlags,
  fastifyOptions,
  type AdminRoutesOptions,
  type BulwarkCoreOptions,
  type BulwarkPluginOptions,
} from './http/plugin.js';
export { type ErrorBody } from './errors/index.js';
export { toHttpError } from './http/error-handler.js';
export { lazySchemas } from './http/lazy-schemas.js';
export { rateLimit, type RateLimitPluginOptions, type RouteRateLimit } from './ratelimit/index.js';
export { serveApp, type ServeOptions } from './http/serve.js';
export { STRICT_CSP, webPages, type WebPagesOptions } from './http/web-pages.js';

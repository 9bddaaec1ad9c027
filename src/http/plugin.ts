import type { FastifyBaseLogger, FastifyInstance, FastifyPluginAsync, FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import net from 'node:net';
import { lazyChildLoggerFactory } from '../logging/index.js';
import { rateLimit, type RateLimitPluginOptions } from '../ratelimit/index.js';
import { createBulwark, type Bulwark, type BulwarkOptions } from '../runtime/create.js';
import { registerAdminApi } from '../admin/plugin.js';
import { registerApiDocs } from './api-docs.js';
import { registerRequestFlags, type RequestFlagsOptions } from './flags.js';
import { captureRequestError, registerBrowserErrors } from './errors.js';
import { errorHandler, frameworkErrorHandler, notFoundHandler } from './error-handler.js';
import { registerObservabilityRoutes } from './health-routes.js';
import {
  BulwarkLogController,
  controllers,
  observeRequests,
  type RequestObservation,
} from './request-observer.js';

declare module 'fastify' {
  interface FastifyInstance {
    bulwark: Bulwark;
  }
}

/** Options of the Fastify plugin. */
export interface BulwarkPluginOptions extends BulwarkOptions {
  /** Use this Bulwark (the caller closes it); by default the plugin creates one and closes it on `close()`. */
  bulwark?: Bulwark;
  /** Serve OpenAPI at `/api-docs` (default true). */
  apiDocs?: boolean;
  /**
   * Rate limiting of the app's routes with `bulwark.rateLimiter`: the default rule and per-route
   * rules (routes may also set `config: { rateLimit }`). Unset: no route is limited.
   */
  rateLimit?: Omit<RateLimitPluginOptions, 'limiter'>;
  /** Accept browser error reports at `POST /errors/browser` (default true; see docs/error-tracking.md). */
  browserErrors?: boolean;
  /** Title of the OpenAPI document (default the Bulwark's service id). */
  title?: string;
  /**
   * Request-scoped flags: `request.flag(key, default)`, with each response's outcome reported to
   * guarded rollouts (`bulwark.rollouts`). Unset: no per-request flag hook.
   */
  flags?: RequestFlagsOptions;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * Fastify options that give the app Bulwark's logger and request ids: `x-request-id` is honoured
 * when it is a sane token (else a UUID is generated), request loggers are created lazily, and
 * per-request observation rides on Fastify's log controller instead of hooks. Optional: the plugin
 * works without them, a few µs per request slower and with your logger.
 */
export function fastifyOptions(
  bulwark: Bulwark,
): FastifyServerOptions & { loggerInstance: FastifyBaseLogger } {
  const logController = new BulwarkLogController();
  controllers.set(bulwark, logController);
  return {
    loggerInstance: bulwark.logger,
    childLoggerFactory: lazyChildLoggerFactory,
    // Replaces Fastify's two lines per request with the plugin's one, and observes requests cheaply.
    logController,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // A malformed URL gets the coded error body too, not Fastify's own.
    frameworkErrors: frameworkErrorHandler,
    // Requests already on a keep-alive connection are served while closing instead of getting 503.
    return503OnClosing: false,
    // Behind the cluster-mode proxy of `bulwark supervise` (on loopback), request.ip is the
    // client's, from X-Forwarded-For, so that per-client rate limits and logs stay per client.
    ...(process.env['BULWARK_BEHIND_PROXY'] === '1' ? { trustProxy: '127.0.0.1' } : {}),
  };
}

async function bulwarkPlugin(app: FastifyInstance, opts: BulwarkPluginOptions): Promise<void> {
  const owned = opts.bulwark === undefined;
  const bulwark = opts.bulwark ?? (await createBulwark(opts));
  app.decorate('bulwark', bulwark);

  const state: RequestObservation = { bulwark };
  observeRequests(app, state);
  app.setErrorHandler(
    errorHandler(bulwark.settings.nodeEnv === 'development', (raw, request, status) =>
      captureRequestError(bulwark, raw, request, status),
    ),
  );
  app.setNotFoundHandler(notFoundHandler);

  if (opts.rateLimit !== undefined) {
    await app.register(rateLimit, { ...opts.rateLimit, limiter: bulwark.rateLimiter });
  }

  if (opts.flags !== undefined) registerRequestFlags(app, bulwark, opts.flags);

  if (opts.apiDocs !== false) {
    await registerApiDocs(app, {
      title: opts.title ?? bulwark.serviceId,
      version: bulwark.version,
    });
  }
  registerObservabilityRoutes(app, bulwark);
  if (opts.browserErrors !== false) registerBrowserErrors(app, bulwark);
  await registerAdminApi(app, bulwark);

  app.addHook('onReady', (done) => {
    bulwark.health.markReady();
    done();
  });
  // Under `bulwark supervise`: ready once the server listens (the supervisor's ready signal).
  app.addHook('onListen', (done) => {
    bulwark.supervisor?.ready();
    done();
  });
  app.addHook('preClose', async () => {
    bulwark.health.markStopping();
    bulwark.logger.info('closing: readiness now fails, draining connections');
    if (app.server.listening) {
      await drainConnections(app.server, Math.min(1000, bulwark.settings.shutdownTimeoutMs / 4));
    }
  });
  if (owned) app.addHook('onClose', async () => bulwark.close());
}

/**
 * Stops accepting connections, then gives open keep-alive connections up to `graceMs` to send one
 * more request (answered with `Connection: close`) and hang up, instead of resetting them while a
 * request may be on the wire. Fastify then closes whatever is still idle and waits for in-flight work.
 */
async function drainConnections(server: Server, graceMs: number): Promise<void> {
  // net.Server#close stops the listener without http.Server#close's immediate reset of idle sockets.
  net.Server.prototype.close.call(server);
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    const open = await new Promise<number>((resolve) => server.getConnections((_e, count) => resolve(count)));
    if (open === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * The Bulwark Fastify plugin: `app.register(bulwark, options)` → `app.bulwark`. Adds request ids,
 * one log line and metrics per request, the coded error and 404 handlers, `/health*`, `/metrics`
 * and `/api-docs`. Register it before your routes so they are documented.
 */
export const bulwark: FastifyPluginAsync<BulwarkPluginOptions> = fp(bulwarkPlugin, {
  fastify: '5.x',
  name: 'bulwark',
});

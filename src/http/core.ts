import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { Server, ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';
import { createBulwark, type Bulwark, type BulwarkOptions } from '../runtime/create.js';
import { watchAcceptQueue } from './accept-queue.js';
import { registerApiDocs } from './api-docs.js';
import { captureRequestError } from './errors.js';
import { errorHandler, notFoundHandler } from './error-handler.js';
import { lazySchemas } from './lazy-schemas.js';
import { registerObservabilityRoutes } from './health-routes.js';
import { endpointGuard } from './protect.js';
import { limitServer, serverLimits } from './server-limits.js';
import { observeRequests, type RequestObservation } from './request-observer.js';

declare module 'fastify' {
  interface FastifyInstance {
    bulwark: Bulwark;
  }
  interface FastifyRequest {
    /**
     * The client's own `x-request-id`, cut to 128 characters and sanitised; undefined when it sent
     * none. Only for correlation with the client's logs: `request.id` is always the server's.
     */
    clientRequestId: string | undefined;
  }
}

/** Options of the core plugin. */
export interface BulwarkCoreOptions extends BulwarkOptions {
  /** Use this Bulwark (the caller closes it); by default the plugin creates one and closes it on `close()`. */
  bulwark?: Bulwark;
  /** Serve OpenAPI at `/api-docs` (default true). */
  apiDocs?: boolean;
  /** Title of the OpenAPI document (default the Bulwark's service id). */
  title?: string;
  /**
   * The app's own security schemes in the OpenAPI document, by the name its routes' `security`
   * uses (`{ spinUser: { type: 'http', scheme: 'bearer' } }`), beside Bulwark's `adminKey` and
   * `metricsToken`.
   */
  securitySchemes?: Record<
    string,
    { type: 'http' | 'apiKey'; scheme?: string; in?: 'header'; name?: string; description?: string }
  >;
  /**
   * Log the answers of `/health*` and `/metrics` at `info` like any other request. Default false:
   * they log at `debug` (a 5xx answer is still an `error` line).
   */
  logProbes?: boolean;
}

async function corePlugin(app: FastifyInstance, opts: BulwarkCoreOptions): Promise<void> {
  const owned = opts.bulwark === undefined;
  const bulwark = opts.bulwark ?? (await createBulwark(opts));
  app.decorate('bulwark', bulwark);

  limitServer(app.server, serverLimits(bulwark.settings), {
    logger: bulwark.logger,
    registry: bulwark.metrics.registry,
  });
  watchAcceptQueue(app.server, { registry: bulwark.metrics.registry, health: bulwark.health });
  const state: RequestObservation = { bulwark, logProbes: opts.logProbes === true };
  // Declared up front so every request object has the same shape.
  app.decorateRequest('clientRequestId', undefined);
  observeRequests(app, state);
  app.setErrorHandler(
    errorHandler(bulwark.settings.nodeEnv === 'development', (raw, request, status) =>
      captureRequestError(bulwark, raw, request, status),
    ),
  );
  app.setNotFoundHandler(notFoundHandler);
  // Before any route, so that every route the app adds later is documented.
  if (opts.apiDocs !== false) {
    await registerApiDocs(
      app,
      {
        title: opts.title ?? bulwark.serviceId,
        version: bulwark.version,
        ...(opts.securitySchemes === undefined ? {} : { securitySchemes: opts.securitySchemes }),
      },
      endpointGuard(bulwark.settings, 'api-docs'),
    );
  }
  // In a context of their own, so that their schemas compile on first use (lazy-schemas.ts).
  await app.register(async (routes) => {
    lazySchemas(routes);
    registerObservabilityRoutes(routes, bulwark);
  });

  app.addHook('onReady', (done) => {
    bulwark.health.markReady();
    done();
  });
  // Under `bulwark supervise`: ready once the server listens (the supervisor's ready signal).
  app.addHook('onListen', (done) => {
    bulwark.supervisor?.ready();
    done();
  });
  const connections = openConnections(app.server);
  app.addHook('preClose', async () => {
    bulwark.health.markStopping();
    lastAnswers(connections);
    bulwark.logger.info('closing: readiness now fails, draining connections');
    if (app.server.listening) {
      await drainConnections(app.server, Math.min(1000, bulwark.settings.shutdownTimeoutMs / 4));
    }
  });
  if (owned) app.addHook('onClose', async () => bulwark.close());
}

/** The server's open connections, kept as they open and close (per connection, not per request). */
function openConnections(server: Server): Set<Socket> {
  const open = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  return open;
}

/**
 * Makes the answer each connection is working on its last: `Connection: close`, so Node ends the
 * connection once it is sent. Fastify says so only on requests that begin after `close()`; an answer
 * to a request already in flight would leave its client's connection open and idle, holding the
 * shutdown to its deadline (exit 1). Answers already begun are left alone.
 */
function lastAnswers(connections: Set<Socket>): void {
  for (const socket of connections) {
    // Node's response in progress on this socket (as in server-limits.ts): not typed, long stable.
    const answer = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    if (answer !== undefined && answer !== null && !answer.headersSent)
      answer.setHeader('connection', 'close');
  }
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
 * The core of the Bulwark Fastify plugins: `app.bulwark`, server limits, request ids, one log line
 * and metrics per request, the coded error and 404 handlers, `/health*`, `/metrics`, `/api-docs`
 * and the graceful close (readiness fails, connections drain). Every other Bulwark plugin needs it.
 * Register it before your routes so they are documented.
 */
export const bulwarkCore: FastifyPluginAsync<BulwarkCoreOptions> = fp(corePlugin, {
  fastify: '5.x',
  name: 'bulwark-core',
});

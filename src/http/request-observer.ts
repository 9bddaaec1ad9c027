import { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { writeRequestLine } from '../logging/index.js';
import type { Bulwark } from '../runtime/create.js';
import { clientRequestId } from './request-id.js';

/**
 * The error a 5xx response, or a 4xx whose message was withheld from the client, came from: noted by
 * the error handler for the request's one log line.
 */
export const failures = new WeakMap<FastifyRequest, unknown>();

/** Per-app request state shared by the two observation paths. */
export interface RequestObservation {
  bulwark: Bulwark;
  /** Log answers of the probe routes (`/health*`, `/metrics`) at `info` like any other (default: `debug`). */
  logProbes?: boolean;
}

/**
 * Answers that get a debug line only, whatever their status: the load shedder's 503s and 429s
 * (thousands a second under overload; counted in its metrics and summed up in one log line per
 * episode).
 */
export const quietAnswers = new WeakSet<FastifyRequest>();

/** Routes that load balancers, the supervisor and scrapers call every few seconds. */
export const PROBE_ROUTES = new Set(['/health', '/health/live', '/health/ready', '/metrics']);
/** Route log levels above info: such a route's answered requests get a debug line only. */
const QUIETER = new Set(['warn', 'error', 'fatal', 'silent']);
const quieter = (level: string | undefined) => level !== undefined && QUIETER.has(level);

/**
 * Start of every request: return the request id in `x-request-id` and keep the client's own as
 * `request.clientRequestId`. (While the app closes, Fastify itself adds `Connection: close` to every
 * response, which the shutdown drain relies on.)
 */
export function onRequestStart(request: FastifyRequest, reply: FastifyReply): void {
  const given = request.headers['x-request-id'];
  if (given !== undefined) request.clientRequestId = clientRequestId(given);
  void reply.header('x-request-id', request.id);
}

/**
 * End of every request: metrics by route template and the request's single log line (`error`
 * level with the error for 5xx, `info` otherwise, with the error when its message was withheld, and
 * the client's request id when it sent one). Probe routes answered below 500 log at `debug` only,
 * unless `logProbes`; so do routes whose `logLevel` is above info (webPages' pages and assets).
 */
export function onRequestEnd(state: RequestObservation, request: FastifyRequest, reply: FastifyReply): void {
  const { bulwark } = state;
  // Read once: Fastify builds the routeOptions object anew at each read.
  const { url, logLevel } = request.routeOptions;
  const route = url ?? 'unmatched';
  const durationMs = reply.elapsedTime;
  const statusCode = reply.statusCode;
  bulwark.metrics.observeHttp(route, request.method, statusCode, durationMs / 1000);
  const rounded = Math.round(durationMs * 1000) / 1000;
  const failure = failures.get(request);
  const clientId = request.clientRequestId;
  // A probe every second would bury the app's own lines (and fill a crash record's last lines); a
  // route that asked to be quieter than info (webPages' pages and assets: a page view is several
  // files) is not an app request worth a line either.
  if (
    (statusCode < 500 &&
      failure === undefined &&
      ((state.logProbes !== true && PROBE_ROUTES.has(route)) || quieter(logLevel))) ||
    (statusCode >= 429 && quietAnswers.has(request))
  ) {
    if (bulwark.logger.isLevelEnabled('debug'))
      request.log.debug({ method: request.method, route, statusCode, durationMs: rounded }, 'request');
    return;
  }
  if (
    statusCode < 500 &&
    failure === undefined &&
    clientId === undefined &&
    writeRequestLine(bulwark.logger, request.id, request.method, route, statusCode, rounded)
  ) {
    return;
  }
  const line: Record<string, unknown> = { method: request.method, route, statusCode, durationMs: rounded };
  // The fast line writes only values Bulwark produces: a request that brings its own id goes through
  // pino (a few µs more), which escapes it.
  if (clientId !== undefined) line['clientRequestId'] = clientId;
  if (statusCode >= 500) request.log.error({ ...line, err: failure }, 'request');
  else request.log.info(failure === undefined ? line : { ...line, err: failure }, 'request');
}

/**
 * Fastify already calls its log controller at the start and end of every request; doing Bulwark's
 * per-request work there costs nothing extra, where `onRequest`/`onResponse` hooks cost several µs
 * per request (docs/benchmarks.md). Fastify's own request log lines are replaced by Bulwark's one.
 */
export class BulwarkLogController extends LogController {
  #state: RequestObservation | undefined;
  #ended: ((request: FastifyRequest, reply: FastifyReply) => void)[] = [];

  constructor() {
    super({ requestIdLogLabel: 'reqId' });
  }

  /** Starts observing for the plugin; until then requests pass unobserved. */
  attach(state: RequestObservation): void {
    this.#state = state;
  }

  /** Also calls `listener` at the end of every request (after the metrics and the log line). */
  onEnd(listener: (request: FastifyRequest, reply: FastifyReply) => void): void {
    this.#ended.push(listener);
  }

  override incomingRequest(request: FastifyRequest, reply: FastifyReply): void {
    if (this.#state !== undefined) onRequestStart(request, reply);
  }

  override requestCompleted(
    _error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (this.#state === undefined) return;
    onRequestEnd(this.#state, request, reply);
    for (const listener of this.#ended) listener(request, reply);
  }
}

/** Controllers made by `fastifyOptions()`, found again by the plugin registered with the same Bulwark. */
export const controllers = new WeakMap<Bulwark, BulwarkLogController>();

/**
 * Calls `listener` when each request of `app` has been answered: from the log controller when the
 * app was built with `fastifyOptions(bulwark)` (no hook, no promise per request), else from an
 * `onResponse` hook.
 */
export function onRequestAnswered(
  app: FastifyInstance,
  bulwark: Bulwark,
  listener: (request: FastifyRequest, reply: FastifyReply) => void,
): void {
  const controller = controllers.get(bulwark);
  if (controller !== undefined) {
    controller.onEnd(listener);
    return;
  }
  app.addHook('onResponse', (request, reply, done) => {
    listener(request, reply);
    done();
  });
}

/**
 * Observes every request of `app`: through the log controller when the app was built with
 * `fastifyOptions(bulwark)`, else through `onRequest`/`onResponse` hooks.
 */
export function observeRequests(app: FastifyInstance, state: RequestObservation): void {
  const controller = controllers.get(state.bulwark);
  if (controller !== undefined) {
    controller.attach(state);
    return;
  }
  app.addHook('onRequest', (request, reply, done) => {
    onRequestStart(request, reply);
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    onRequestEnd(state, request, reply);
    done();
  });
}

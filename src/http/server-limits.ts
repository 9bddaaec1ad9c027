// The HTTP server's limits: how long a client may take to send a request, how long a connection may
// idle, how many may be open. Node and Fastify leave most of them off; without them, a client that
// sends its body one byte at a time holds a connection (and a file descriptor) forever.
import { readFileSync } from 'node:fs';
import http, { STATUS_CODES, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyHttpOptions } from 'fastify';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { bulwarkError, errorBody, type ErrorCode } from '../errors/index.js';
import type { Settings } from '../settings/index.js';
import { generateRequestId } from './request-id.js';

/** The limits of the HTTP server, in ms, bytes and counts (from the `BULWARK_*` settings). */
export type ServerLimits = Pick<
  Settings,
  | 'headersTimeoutMs'
  | 'requestTimeoutMs'
  | 'keepAliveTimeoutMs'
  | 'idleTimeoutMs'
  | 'maxConnections'
  | 'maxRequestsPerSocket'
  | 'bodyLimitBytes'
> & {
  /** How often Node looks for requests past their headers or request timeout, in ms. */
  checkIntervalMs: number;
};

/** Why the server closed a connection, as counted by `bulwark_http_connections_closed_total`. */
type CloseReason = 'max_connections' | 'request_timeout' | 'headers_too_large' | 'bad_request';

/** The server limits the settings ask for. */
export function serverLimits(settings: Settings): ServerLimits {
  const shorter = Math.min(settings.headersTimeoutMs, settings.requestTimeoutMs);
  return {
    headersTimeoutMs: settings.headersTimeoutMs,
    requestTimeoutMs: settings.requestTimeoutMs,
    keepAliveTimeoutMs: settings.keepAliveTimeoutMs,
    idleTimeoutMs: settings.idleTimeoutMs,
    maxConnections: settings.maxConnections,
    maxRequestsPerSocket: settings.maxRequestsPerSocket,
    bodyLimitBytes: settings.bodyLimitBytes,
    // Node looks for late requests every 30 s by default, which would hold a slow request up to 30 s
    // past its timeout; a tenth of the shorter timeout (at most 1 s) cuts it within ~10% of it.
    checkIntervalMs: Math.max(10, Math.min(1000, Math.floor(shorter / 10))),
  };
}

/**
 * The Fastify options that carry the limits: Fastify passes them to the server it creates (and
 * `bodyLimit` can only be set this way). The plugin applies the server-side ones again with
 * {@link limitServer}, so an app built without them is bounded too.
 */
export function limitOptions(limits: ServerLimits): FastifyHttpOptions<Server> {
  return {
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    maxRequestsPerSocket: limits.maxRequestsPerSocket,
    bodyLimit: limits.bodyLimitBytes,
    http: {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: limits.checkIntervalMs,
    },
  };
}

/**
 * Applies the limits to a Node HTTP server that does not listen yet (the check interval is read
 * when it starts listening), counts the connections refused at the cap, warns about them at most
 * every 10 s, and warns once when the cap does not fit the process's open-file limit.
 */
export function limitServer(
  server: Server,
  limits: ServerLimits,
  deps: { logger: Logger; registry: Registry },
): void {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.setTimeout(limits.idleTimeoutMs);
  server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
  server.maxConnections = limits.maxConnections;
  // Not in Node's type definitions, but a public property read when the server starts listening.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval =
    limits.checkIntervalMs;

  const closed = closedConnections(deps.registry);
  let refused = 0;
  let warnedAt = 0;
  server.on('drop', () => {
    closed.inc({ reason: 'max_connections' });
    refused += 1;
    const now = Date.now();
    if (now - warnedAt < 10_000) return;
    deps.logger.warn(
      { maxConnections: limits.maxConnections, refused },
      'connections refused: BULWARK_MAX_CONNECTIONS reached',
    );
    warnedAt = now;
    refused = 0;
  });

  const files = openFileLimit();
  // Beyond the cap the process still needs descriptors: the store, Redis, logs, outgoing requests.
  if (files !== undefined && limits.maxConnections > files - 64) {
    deps.logger.warn(
      { maxConnections: limits.maxConnections, openFileLimit: files },
      'BULWARK_MAX_CONNECTIONS is not below the open-file limit: a connection flood can exhaust file descriptors first',
    );
  }
}

/**
 * Fastify's `clientErrorHandler`: answers a request the server gave up on (headers or body not
 * received in time, headers too large, unparseable) with the coded error body and
 * `Connection: close`, then closes the socket. Nothing is written once a response has begun.
 */
export function clientErrorHandler(limits: ServerLimits, registry: Registry) {
  const closed = closedConnections(registry);
  return function handleClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const [reason, code, params] = describeClientError(error, limits);
    closed.inc({ reason });
    const inFlight = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    if (socket.writable && (inFlight === undefined || inFlight === null || !inFlight.headersSent)) {
      const coded = bulwarkError(code, params, { cause: error });
      const requestId = generateRequestId();
      const text = JSON.stringify(errorBody(coded, requestId));
      const status = coded.statusCode;
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\n` +
          `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\n` +
          `x-request-id: ${requestId}\r\n\r\n${text}`,
      );
    }
    socket.destroy(error);
  };
}

function describeClientError(
  error: NodeJS.ErrnoException,
  limits: ServerLimits,
): [CloseReason, ErrorCode, Record<string, unknown>] {
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return [
      'request_timeout',
      'BWK_ERR_HTTP_REQUEST_TIMEOUT',
      { headersTimeoutMs: limits.headersTimeoutMs, requestTimeoutMs: limits.requestTimeoutMs },
    ];
  }
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    return ['headers_too_large', 'BWK_ERR_HTTP_HEADERS_TOO_LARGE', { limit: http.maxHeaderSize }];
  }
  return ['bad_request', 'BWK_ERR_HTTP_BAD_REQUEST', { detail: 'the request could not be parsed' }];
}

/** `bulwark_http_connections_closed_total`, one per registry. */
function closedConnections(registry: Registry): Counter<'reason'> {
  const name = 'bulwark_http_connections_closed_total';
  return (
    (registry.getSingleMetric(name) as Counter<'reason'> | undefined) ??
    new Counter({
      name,
      help: 'Connections the HTTP server closed on its own: refused at the connection cap, or a request not received in time, too large or unparseable.',
      labelNames: ['reason'],
      registers: [registry],
    })
  );
}

/** The soft limit on open files of this process (Linux), else undefined. */
function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isInteger(soft) ? soft : undefined;
  } catch {
    return undefined;
  }
}

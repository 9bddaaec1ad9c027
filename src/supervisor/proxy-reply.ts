// What the proxy itself answers a client: its error responses, on an HTTP response or written raw on
// an upgrade socket, and how a client socket is ended.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { bulwarkError, errorBody, type ErrorCode } from '../errors/index.js';

/** An `error` listener for client sockets: what follows an error is handled on `close`. */
export function ignore(): void {}

/** Ends a client socket and destroys it once flushed: upgraded sockets are half-open capable. */
export function finish(client: Duplex): void {
  if (client instanceof net.Socket) client.destroySoon();
  else client.end();
}

/**
 * The error body for `code` with a new request id: as in the app, the server chooses every id (a
 * client's own `x-request-id` could make unrelated answers share one).
 */
function errorResponse(
  req: http.IncomingMessage,
  code: ErrorCode,
  params: Record<string, unknown>,
  cause?: unknown,
): { status: number; body: string; requestId: string } {
  const error = bulwarkError(code, params, cause === undefined ? {} : { cause });
  const requestId = randomUUID();
  return { status: error.statusCode, body: JSON.stringify(errorBody(error, requestId)), requestId };
}

/**
 * Answers the client with the error `code` (503 ones with `retry-after`); destroys the response instead
 * when its headers are already sent, and does nothing once it is destroyed.
 */
export function sendError(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  code: ErrorCode,
  params: Record<string, unknown>,
  cause?: unknown,
): void {
  if (res.destroyed) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const { status, body, requestId } = errorResponse(req, code, params, cause);
  const headers = [
    'content-type',
    'application/json; charset=utf-8',
    'content-length',
    String(Buffer.byteLength(body)),
    'x-request-id',
    requestId,
  ];
  if (code === 'BWK_ERR_SUPERVISOR_UNAVAILABLE') headers.push('retry-after', '1');
  // An unread request body would otherwise be parsed as the next request.
  if (!req.complete) headers.push('connection', 'close');
  res.writeHead(status, headers);
  res.end(body);
}

/**
 * Writes an error response straight to an upgrade's client socket (no `ServerResponse` exists there),
 * then ends it.
 */
export function rawError(
  req: http.IncomingMessage,
  client: Duplex,
  code: ErrorCode,
  params: Record<string, unknown>,
  cause?: unknown,
): void {
  const { status, body, requestId } = errorResponse(req, code, params, cause);
  client.write(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`,
  );
  finish(client);
}

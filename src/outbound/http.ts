import type { Pool } from 'undici';
import type { Attempted } from './guard.js';
import type { OutboundRequest, OutboundResponse } from './types.js';

/** Methods that may be sent twice without changing the outcome (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/** Whether `request` may be retried: its own `idempotent`, else by its method. */
export function isIdempotent(request: OutboundRequest): boolean {
  return request.idempotent ?? IDEMPOTENT.has((request.method ?? 'GET').toUpperCase());
}

/**
 * The connections to one origin (an undici Pool: nothing connects before the first request).
 * undici (~75 ms to load) is imported with the first pool: a service that makes no HTTP call never
 * loads it.
 */
export async function connectionPool(origin: string, connections: number): Promise<Pool> {
  const { Pool } = await import('undici');
  return new Pool(origin, { connections });
}

/** An upstream that answered 5xx: a failure of the upstream (retried when idempotent). */
class UpstreamStatusError extends Error {
  readonly status: number;

  constructor(status: number) {
    super(`HTTP ${status}`);
    this.name = 'UpstreamStatusError';
    this.status = status;
  }
}

function response(status: number, headers: OutboundResponse['headers'], body: Buffer): OutboundResponse {
  return {
    status,
    headers,
    body,
    text: () => body.toString('utf8'),
    json: <T>() => JSON.parse(body.toString('utf8')) as T,
  };
}

/**
 * One attempt of `request` on `pool`, within `remainingMs` (undici's header and body timeouts) and
 * until `signal` aborts. Resolves with the answer (2xx–4xx, the body read whole; a 429 is not
 * accepted), throws on a 5xx (its body discarded) or a connection error.
 */
export async function httpAttempt(
  pool: Pool,
  request: OutboundRequest,
  signal: AbortSignal,
  remainingMs: number,
): Promise<Attempted<OutboundResponse>> {
  const timeout = Math.max(1, Math.ceil(remainingMs));
  const answer = await pool.request({
    path: request.path ?? '/',
    method: (request.method ?? 'GET').toUpperCase(),
    headers: request.headers ?? {},
    body: request.body ?? null,
    signal,
    headersTimeout: timeout,
    bodyTimeout: timeout,
  });
  if (answer.statusCode >= 500) {
    await answer.body.dump().catch(() => undefined);
    throw new UpstreamStatusError(answer.statusCode);
  }
  const body = Buffer.from(await answer.body.arrayBuffer());
  return { value: response(answer.statusCode, answer.headers, body), accepted: answer.statusCode !== 429 };
}

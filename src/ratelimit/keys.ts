import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

/**
 * What identifies a client for rate limiting.
 * - `ip`: `request.ip`, which Fastify's `trustProxy` option governs (behind a proxy, configure it or
 *   every client shares the proxy's address).
 * - `apiKey`: the `header` (default `x-api-key`, any case), hashed: the raw key is never used as a key, stored
 *   or listed.
 * - `user`: whatever `user(request)` returns (e.g. the authenticated subject).
 *
 * Requests without an API key or user fall back to their IP, so anonymous traffic is limited too.
 */
export type KeyBy =
  | { by: 'ip' }
  | { by: 'apiKey'; header?: string }
  | { by: 'user'; user: (request: FastifyRequest) => string | undefined };

/**
 * The rate-limit key of a request: `ip:<address>`, `key:<sha-256 of the API key, 32 hex>` or
 * `user:<id>`, falling back to `ip:<address>` when the API key or user is missing.
 */
export function keyFrom(request: FastifyRequest, how: KeyBy): string {
  switch (how.by) {
    case 'ip':
      return `ip:${request.ip}`;
    case 'apiKey': {
      const raw = request.headers[how.header?.toLowerCase() ?? 'x-api-key'];
      const value = Array.isArray(raw) ? raw[0] : raw;
      return value === undefined || value === '' ? `ip:${request.ip}` : `key:${hashApiKey(value)}`;
    }
    case 'user': {
      const user = how.user(request);
      return user === undefined || user === '' ? `ip:${request.ip}` : `user:${user}`;
    }
  }
}

/**
 * SHA-256 of an API key, first 128 bits as hex. Unsalted on purpose: the same key must map to the
 * same counter on every instance, and API keys carry enough entropy that a hash reveals nothing.
 */
export function hashApiKey(raw: string): string {
  return createHash('sha256').update(raw).digest('hex').slice(0, 32);
}

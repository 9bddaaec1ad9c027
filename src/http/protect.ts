// Keys on the endpoints that are open by default (`/metrics`, `/api-docs`, `/health*`), for
// deployments where whoever reaches the port must not learn the routes, the traffic or the checks.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { bulwarkError } from '../errors/index.js';
import { protectedEndpoints, type ProtectableEndpoint, type Settings } from '../settings/index.js';

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/**
 * Checks an `Authorization` header against bearer secrets: `missing` without a bearer value,
 * `wrong` when it matches none, `ok` when it matches one. Every secret is compared, each in
 * constant time over its SHA-256 digest, so neither the length of a secret nor which one matched
 * shows in the timing.
 */
export function bearerMatcher(
  secrets: readonly string[],
): (authorization: string | undefined) => 'missing' | 'wrong' | 'ok' {
  const expected = secrets.map(digest);
  return (authorization) => {
    const header = authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    if (given === '') return 'missing';
    const actual = digest(given);
    let matched = false;
    for (const secret of expected) matched = timingSafeEqual(actual, secret) || matched;
    return matched ? 'ok' : 'wrong';
  };
}

/**
 * The `onRequest` hook that guards `endpoint` when the settings protect it (`BULWARK_PROTECT_ENDPOINTS`,
 * `BULWARK_METRICS_TOKEN`), else undefined. It lets through `Authorization: Bearer` with the admin key
 * (any endpoint) or the metrics token (all but `api-docs`, which lists the admin API); anything else
 * gets 401 `BWK_ERR_HTTP_UNAUTHORIZED` with `WWW-Authenticate: Bearer`. Refusals touch no storage.
 */
export function endpointGuard(
  settings: Settings,
  endpoint: ProtectableEndpoint,
): onRequestAsyncHookHandler | undefined {
  if (!protectedEndpoints(settings).has(endpoint)) return undefined;
  const names = ['BULWARK_ADMIN_KEY'];
  const secrets: string[] = settings.adminKey === undefined ? [] : [settings.adminKey];
  if (endpoint !== 'api-docs') {
    names.push('BULWARK_METRICS_TOKEN');
    if (settings.metricsToken !== undefined) secrets.push(settings.metricsToken);
  }
  const matches = bearerMatcher(secrets);
  return async function guard(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (matches(request.headers.authorization) === 'ok') return;
    void reply.header('www-authenticate', 'Bearer realm="bulwark"');
    throw bulwarkError('BWK_ERR_HTTP_UNAUTHORIZED', { endpoint, keys: names.join(' or ') });
  };
}

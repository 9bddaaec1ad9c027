// Who an admin API request acts as, set by the admin scope's access hook (src/admin/access.ts) and
// read by routes and the audit. A WeakMap, so nothing outlives the request.
import type { FastifyRequest } from 'fastify';
import type { Identity } from '../access/types.js';

const identities = new WeakMap<FastifyRequest, Identity>();

/** Records who `request` acts as (the access hook, or the login route once the key checked out). */
export function setAdminIdentity(request: FastifyRequest, identity: Identity): void {
  identities.set(request, identity);
}

/** Who `request` acts as; undefined before the access hook admitted it (or outside the admin scope). */
export function adminIdentity(request: FastifyRequest): Identity | undefined {
  return identities.get(request);
}

/**
 * The audit actor of an admin API request: `key:<name>` for a stored key or its session, `admin`
 * for `BULWARK_ADMIN_KEY`. Every route audit goes through it.
 *
 * @throws Error when the request was not admitted by the admin scope's access hook (a route
 *   registered outside the scope): a programming error, never a caller's.
 */
export function adminActor(request: FastifyRequest): string {
  const identity = identities.get(request);
  if (identity === undefined)
    throw new Error(
      `no admin identity on ${request.method} ${request.url}: register the route in the admin scope`,
    );
  return identity.actor;
}

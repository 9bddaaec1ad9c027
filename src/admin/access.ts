// Access control and audit of the admin scope (`/admin/api/`): who a request is (a Bearer key or the
// console's session cookie), whether it may do what it asks (CSRF defence, roles), the login and
// logout routes, and the audit of every change admitted. Keys and sessions: src/access/.
import cookie from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Access, SessionInfo } from '../access/types.js';
import { sameSecret } from '../access/secrets.js';
import { bulwarkError, catalogue, type BulwarkError, type ErrorCode } from '../errors/index.js';
import { clientNetwork } from '../ratelimit/client-network.js';
import type { Bulwark } from '../runtime/create.js';
import { AUDIT_REFUSED_TARGET } from '../store/audit-retention.js';
import { adminIdentity, setAdminIdentity } from './actor.js';

/** The console's session cookie (HttpOnly, SameSite=Strict, Path=/admin, Secure over TLS). */
export const SESSION_COOKIE = 'bulwark_session';

/** Methods that change nothing: the only ones a viewer may use, and the only ones without CSRF checks. */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * How a route of the admin scope is guarded (its `config.adminAccess`): by default a key or session
 * and, to change anything, the operator role. `login`: open to all, limited per client network (the
 * route checks the key itself). `any-role`: a viewer may use it too (logging out, evaluating a flag).
 */
export type RouteAccess = 'login' | 'any-role';

/** Why a request was refused before it was admitted: each is tallied, never written one by one. */
type Refusal =
  | 'disabled'
  | 'missing-key'
  | 'wrong-key'
  | 'wrong-token'
  | 'bad-session'
  | 'csrf'
  | 'login-limited'
  | 'not-admitted';

const REFUSAL_CODES: Record<Exclude<Refusal, 'not-admitted'>, ErrorCode> = {
  disabled: 'BWK_ERR_ADMIN_DISABLED',
  'missing-key': 'BWK_ERR_ADMIN_UNAUTHORIZED',
  'wrong-key': 'BWK_ERR_ADMIN_UNAUTHORIZED',
  'wrong-token': 'BWK_ERR_ADMIN_UNAUTHORIZED',
  'bad-session': 'BWK_ERR_ADMIN_UNAUTHORIZED',
  csrf: 'BWK_ERR_ADMIN_CSRF',
  'login-limited': 'BWK_ERR_ADMIN_LOGIN_LIMITED',
};

const Session = Type.Object({
  role: Type.Enum(['viewer', 'operator']),
  actor: Type.String({ description: '`key:<name>`, or `admin` for BULWARK_ADMIN_KEY' }),
  csrfToken: Type.String({ description: 'send as X-CSRF-Token with every change made with the cookie' }),
  expiresAt: Type.Integer({
    description: 'ms since the epoch (12 h after login; 1 h without a request ends it sooner)',
  }),
});
const security = [{ adminKey: [] }];

/**
 * Guards the admin scope `admin` and audits it. Every request is admitted with
 * `Authorization: Bearer <key>` (a stored key that is not revoked, or `BULWARK_ADMIN_KEY`) or the
 * session cookie; with the cookie, a change (any method but GET, HEAD, OPTIONS) also needs `Origin`
 * equal to the request's own origin and `X-CSRF-Token` equal to the session's token (else 403
 * `BWK_ERR_ADMIN_CSRF`); a viewer's change is refused before its route runs (403
 * `BWK_ERR_ADMIN_FORBIDDEN`). No key anywhere: 403 `BWK_ERR_ADMIN_DISABLED`; a missing or wrong key,
 * an expired session: 401 `BWK_ERR_ADMIN_UNAUTHORIZED`.
 *
 * Refusals cost no I/O beyond the key lookup: they are tallied per client network and reason and
 * written as one summary row per minute (`admin.refused`, target `AUDIT_REFUSED_TARGET`). Every
 * request admitted is written to the audit log with its actor (`adminActor`), status, IP and
 * request id; never a key, token or session id. Adds `POST|GET|DELETE /session` (login, the
 * session, logout) unless `sessionRoutes` is false (an app's own admin scope: the console logs in
 * through the admin API). Throws when Bulwark runs without its access part.
 */
export async function registerAccess(
  admin: FastifyInstance,
  bulwark: Bulwark,
  { sessionRoutes = true }: { sessionRoutes?: boolean } = {},
): Promise<void> {
  const access = bulwark.parts.get('access') as Access | undefined;
  if (access === undefined)
    throw new Error('the admin API needs the access part (accessPart in src/access/part.ts)');
  // Another scope above (the console's pages, say) may have registered it already.
  if (!admin.hasDecorator('parseCookie')) await admin.register(cookie);
  // Requests refused before admission, so that onResponse does not audit them one by one.
  const refused = new WeakSet<FastifyRequest>();
  const sessions = new WeakMap<FastifyRequest, { id: string; session: SessionInfo }>();

  const tally = (request: FastifyRequest, refusal: Refusal, status: number): void => {
    refused.add(request);
    const client = clientNetwork(request.ip);
    bulwark.store.audit.tally({
      actor: 'anonymous',
      action: 'admin.refused',
      target: AUDIT_REFUSED_TARGET,
      key: `${client}|${refusal}`,
      detail: { client, reason: refusal, status },
      // The route template, not the URL: a refused client must not choose what is stored.
      sample: `${request.method} ${routeOf(request)}`,
    });
  };
  const refuse = (
    request: FastifyRequest,
    refusal: Exclude<Refusal, 'not-admitted'>,
    params: Record<string, unknown> = {},
  ): BulwarkError => {
    const code = REFUSAL_CODES[refusal];
    tally(request, refusal, catalogue[code].status);
    return bulwarkError(code, params);
  };

  admin.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const routeAccess = accessOf(request);
    if (routeAccess === 'login') {
      // Every attempt counts, a malformed one too; checked before anything is read.
      const decision = access.loginAttempt(clientNetwork(request.ip));
      if (decision.allowed) return;
      void reply.header('retry-after', String(decision.retryAfterS));
      throw refuse(request, 'login-limited', { retryAfter: decision.retryAfterS });
    }
    if (!(await access.enabled())) throw refuse(request, 'disabled');
    const changes = !SAFE_METHODS.has(request.method);
    const bearer = bearerOf(request);
    let identity;
    if (bearer !== '') {
      identity = await access.authenticate(bearer);
      if (identity === undefined) throw refuse(request, 'wrong-key');
    } else {
      const id = request.cookies[SESSION_COOKIE];
      if (id === undefined || id === '') throw refuse(request, 'missing-key');
      const open = await access.session(id);
      if (open === undefined) {
        void reply.clearCookie(SESSION_COOKIE, cookieOptions(request));
        throw refuse(request, 'bad-session');
      }
      if (changes && !csrfChecked(request, open.session.csrfToken)) throw refuse(request, 'csrf');
      identity = open.identity;
      sessions.set(request, { id, session: open.session });
    }
    setAdminIdentity(request, identity);
    if (changes && identity.role !== 'operator' && routeAccess !== 'any-role')
      throw bulwarkError('BWK_ERR_ADMIN_FORBIDDEN', {
        role: identity.role,
        method: request.method,
        route: routeOf(request),
      });
  });

  admin.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    if (refused.has(request)) return;
    const identity = adminIdentity(request);
    // Answered before anyone was known (a login body that could not be read, the store down while
    // a key was looked up): tallied too, never written one by one.
    if (identity === undefined) return tally(request, 'not-admitted', reply.statusCode);
    // Reads change nothing: a console refetching what it shows would fill the log with them.
    if (SAFE_METHODS.has(request.method)) return;
    await bulwark.store.audit
      .append({
        actor: identity.actor,
        action: `${request.method} ${routeOf(request)}`,
        target: (request.url.split('?')[0] ?? '').replace(/^\/admin\/api/, '') || '/',
        detail: { status: reply.statusCode, ip: request.ip, requestId: request.id },
      })
      .catch((error: unknown) => request.log.error({ err: error }, 'admin audit write failed'));
  });

  if (!sessionRoutes) return;
  const typed = admin.withTypeProvider<TypeBoxTypeProvider>();
  typed.post(
    '/session',
    {
      config: { adminAccess: 'login' satisfies RouteAccess },
      schema: {
        tags: ['admin'],
        summary: 'Log in to the console with a key or a one-time login token: sets the session cookie',
        description:
          'Give `key` (a stored key or BULWARK_ADMIN_KEY) or `token` (the one-time token of the first start’s link). 10 attempts per client network and minute, then 429 with Retry-After.',
        body: Type.Object(
          {
            key: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
            token: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Session },
      },
    },
    async (request, reply) => {
      const { key, token } = request.body;
      if ((key === undefined) === (token === undefined))
        throw bulwarkError('BWK_ERR_HTTP_VALIDATION', { part: 'body', detail: 'give either key or token' });
      if (!(await access.enabled())) throw refuse(request, 'disabled');
      const identity =
        key !== undefined ? await access.authenticate(key) : await access.redeemLoginToken(token ?? '');
      if (identity === undefined) throw refuse(request, key !== undefined ? 'wrong-key' : 'wrong-token');
      const { id, session } = await access.startSession(identity);
      setAdminIdentity(request, identity);
      void reply.setCookie(SESSION_COOKIE, id, {
        ...cookieOptions(request),
        expires: new Date(session.expiresAt),
      });
      return session;
    },
  );

  typed.get(
    '/session',
    {
      schema: {
        tags: ['admin'],
        summary: 'The console session of the cookie (401 without one, also with a Bearer key)',
        security,
        response: { 200: Session },
      },
    },
    async (request) => {
      const open = sessions.get(request);
      if (open === undefined) throw bulwarkError('BWK_ERR_ADMIN_UNAUTHORIZED');
      return open.session;
    },
  );

  typed.delete(
    '/session',
    {
      config: { adminAccess: 'any-role' satisfies RouteAccess },
      schema: {
        tags: ['admin'],
        summary: 'Log out: ends the session of the cookie and clears the cookie; 204',
        security,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const open = sessions.get(request);
      if (open !== undefined) await access.endSession(open.id);
      void reply.clearCookie(SESSION_COOKIE, cookieOptions(request));
      return reply.code(204).send(null);
    },
  );
}

/** The route template (what audit rows and refusal samples name), not the URL. */
function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? 'unmatched';
}

function accessOf(request: FastifyRequest): RouteAccess | undefined {
  return (request.routeOptions.config as { adminAccess?: RouteAccess } | undefined)?.adminAccess;
}

function bearerOf(request: FastifyRequest): string {
  const header = request.headers.authorization ?? '';
  return header.startsWith('Bearer ') ? header.slice(7).trim() : '';
}

/**
 * The CSRF defence of a change made with the cookie: `Origin` is this site's own origin (a browser
 * always sends it on a cross-site POST, PUT or DELETE and cannot be made to forge it) and
 * `X-CSRF-Token` is the session's token (a header another site cannot set without CORS, which the
 * admin API does not grant).
 */
function csrfChecked(request: FastifyRequest, expected: string): boolean {
  const token = request.headers['x-csrf-token'];
  return (
    request.headers.origin === `${request.protocol}://${request.host}` &&
    typeof token === 'string' &&
    sameSecret(token, expected)
  );
}

function cookieOptions(request: FastifyRequest) {
  return {
    httpOnly: true,
    sameSite: 'strict',
    path: '/admin',
    secure: request.protocol === 'https',
  } as const;
}

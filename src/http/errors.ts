import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { bulwarkError } from '../errors/index.js';
import { clientNetwork } from '../ratelimit/client-network.js';
import type { Bulwark } from '../runtime/create.js';
import { BROWSER_ERRORS_POLICY } from '../ratelimit/part.js';
import type { UserContext } from '../tracker/index.js';

const Text = (maxLength: number) => Type.String({ minLength: 1, maxLength });

/** The body of `POST /errors/browser`. */
const BrowserReportBody = Type.Object(
  {
    message: Text(2_000),
    type: Type.Optional(Text(200)),
    stack: Type.Optional(Type.String({ maxLength: 16_000 })),
    url: Type.Optional(Text(2_000)),
    release: Type.Optional(Text(200)),
    user: Type.Optional(
      Type.Object(
        { id: Type.Optional(Text(200)), username: Type.Optional(Text(200)) },
        { additionalProperties: false },
      ),
    ),
    breadcrumbs: Type.Optional(
      Type.Array(
        Type.Object(
          {
            at: Type.Integer({ minimum: 0 }),
            category: Text(100),
            message: Type.String({ maxLength: 500 }),
            level: Type.Optional(Type.Enum(['debug', 'info', 'warning', 'error'])),
            data: Type.Optional(
              Type.Record(
                Type.String({ maxLength: 100 }),
                Type.Union([Type.String({ maxLength: 500 }), Type.Number(), Type.Boolean()]),
                { maxProperties: 20 },
              ),
            ),
          },
          { additionalProperties: false },
        ),
        { maxItems: 30 },
      ),
    ),
  },
  { additionalProperties: false },
);

/**
 * The user an error happened for: `request.user` as auth plugins set it, reduced to its `id` and
 * `username` (nothing else of it is kept: it may hold tokens or personal data).
 */
export function userOf(request: FastifyRequest): UserContext | undefined {
  const user = (request as { user?: unknown }).user;
  if (typeof user !== 'object' || user === null) return undefined;
  const { id, username } = user as { id?: unknown; username?: unknown };
  const picked: UserContext = {};
  if (typeof id === 'string' || typeof id === 'number') picked.id = String(id);
  if (typeof username === 'string') picked.username = username;
  return Object.keys(picked).length === 0 ? undefined : picked;
}

/** Captures a request's 5xx error with its request and user context (for the error handler). */
export function captureRequestError(
  bulwark: Bulwark,
  raw: unknown,
  request: FastifyRequest,
  status: number,
): void {
  const user = userOf(request);
  bulwark.errors.capture(raw, {
    request: {
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status,
      requestId: request.id,
    },
    ...(user === undefined ? {} : { user }),
  });
}

/**
 * `POST /errors/browser`: browser error reports. Validated (every field bounded, else
 * `BWK_ERR_HTTP_VALIDATION`; unknown fields are dropped), body at most 32 KiB, 30 reports per minute per client
 * network (an IPv4 address, an IPv6 /64: see `clientNetwork`; policy `bulwark.browser-errors`, `BWK_ERR_RATELIMIT_EXCEEDED` beyond), answered 202.
 */
export function registerBrowserErrors(app: FastifyInstance, bulwark: Bulwark): void {
  app.withTypeProvider<TypeBoxTypeProvider>().post(
    '/errors/browser',
    {
      bodyLimit: 32 * 1024,
      schema: {
        tags: ['errors'],
        summary: 'Report a browser error (rate limited per client)',
        body: BrowserReportBody,
        response: {
          202: Type.Object({ accepted: Type.Boolean(), fingerprint: Type.Optional(Type.String()) }),
        },
      },
    },
    async (request, reply) => {
      const decision = await bulwark.rateLimiter.consume(
        `ip:${clientNetwork(request.ip)}`,
        1,
        BROWSER_ERRORS_POLICY.name,
      );
      if (!decision.allowed) {
        const retryAfter = Math.max(1, Math.ceil((decision.retryAfterMs ?? decision.resetMs) / 1000));
        void reply.header('retry-after', String(retryAfter));
        throw bulwarkError('BWK_ERR_RATELIMIT_EXCEEDED', { policy: decision.policy, retryAfter });
      }
      const result = bulwark.errors.captureBrowser(request.body);
      void reply.code(202);
      return result === undefined ? { accepted: false } : { accepted: true, fingerprint: result.fingerprint };
    },
  );
}

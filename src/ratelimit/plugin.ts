import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
} from 'fastify';
import fp from 'fastify-plugin';
import { bulwarkError } from '../errors/index.js';
import { keyFrom, type KeyBy } from './keys.js';
import type { RateLimitDecision, RateLimiter, RateLimitPolicy } from './types.js';

/**
 * How one route is limited: the key (`by`), the policy (default: the limiter's default policy) and
 * the points one request costs (default 1).
 */
export type RouteRateLimit = KeyBy & { policy?: string; points?: number };

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Rate limiting of this route: a rule replacing the plugin's, or `false` to exempt the route. */
    rateLimit?: RouteRateLimit | false;
  }
}

/** Options of the {@link rateLimit} plugin. */
export interface RateLimitPluginOptions {
  /** The limiter to consume from; the caller creates and closes it. */
  limiter: RateLimiter;
  /** The rule of every route without its own (unmatched requests included); `false`: none. */
  default: RouteRateLimit | false;
  /** Rules by route URL as registered (`/users/:id`); a route's `config.rateLimit` wins over these. */
  routes?: Record<string, RouteRateLimit | false>;
}

/** A rule with its policy resolved and its policy header rendered once. */
interface Rule {
  by: KeyBy;
  policy: RateLimitPolicy;
  points: number;
  policyHeader: string;
}

/** Seconds for a header: whole, rounded up, so a client never retries early. */
function seconds(ms: number): number {
  return Math.ceil(ms / 1000);
}

function compile(limiter: RateLimiter, rule: RouteRateLimit | false, where: string): Rule | undefined {
  if (rule === false) return undefined;
  const fail = (detail: string): never => {
    throw bulwarkError('BWK_ERR_RATELIMIT_OPTIONS', { detail: `${where}: ${detail}` });
  };
  if (!['ip', 'apiKey', 'user'].includes(rule.by)) fail(`by must be ip, apiKey or user, not ${rule.by}`);
  if (rule.by === 'user' && typeof rule.user !== 'function') fail(`by: 'user' needs a user function`);
  const points = rule.points ?? 1;
  if (!Number.isInteger(points) || points < 1) fail(`points must be a positive integer, not ${points}`);
  let policy: RateLimitPolicy;
  try {
    policy = limiter.policy(rule.policy);
  } catch (error) {
    throw bulwarkError(
      'BWK_ERR_RATELIMIT_OPTIONS',
      { detail: `${where}: unknown policy ${JSON.stringify(rule.policy)}` },
      { cause: error },
    );
  }
  // draft-ietf-httpapi-ratelimit-headers: a quota policy item, `w` in whole seconds.
  const policyHeader = `"${policy.name}";q=${policy.limit};w=${Math.max(1, seconds(policy.windowMs))}`;
  return { by: rule, policy, points, policyHeader };
}

async function rateLimitPlugin(app: FastifyInstance, opts: RateLimitPluginOptions): Promise<void> {
  const { limiter } = opts;
  // Misconfiguration fails at registration, not on the first request.
  const fallbackRule = compile(limiter, opts.default, 'default');
  const byUrl = new Map<string, Rule | undefined>();
  for (const [url, rule] of Object.entries(opts.routes ?? {})) byUrl.set(url, compile(limiter, rule, url));
  app.addHook('onRoute', (route) => {
    const own = route.config?.rateLimit;
    if (own !== undefined) compile(limiter, own, `route ${route.url}`);
  });

  // One resolution per route: the route's config object is stable for the life of the app.
  const resolved = new WeakMap<object, Rule | null>();
  const ruleOf = (request: FastifyRequest): Rule | undefined => {
    const config = request.routeOptions.config;
    const cached = resolved.get(config);
    if (cached !== undefined) return cached ?? undefined;
    const url = request.routeOptions.url;
    const rule =
      config.rateLimit !== undefined
        ? compile(limiter, config.rateLimit, `route ${url ?? '(unmatched)'}`)
        : url !== undefined && byUrl.has(url)
          ? byUrl.get(url)
          : fallbackRule;
    resolved.set(config, rule ?? null);
    return rule;
  };

  // A callback hook, not an async one, answered at once when the limiter can decide without I/O
  // (in memory): no promise per request.
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    if (!limiter.enabled) return done(); // switched off (flag bulwark.ratelimit)
    const rule = ruleOf(request);
    if (rule === undefined) return done();
    const key = keyFrom(request, rule.by);
    const now = limiter.consumeNow(key, rule.points, rule.policy.name);
    if (now !== undefined) return answer(reply, rule, now, done);
    limiter
      .consume(key, rule.points, rule.policy.name)
      .then((decision) => answer(reply, rule, decision, done), done);
  });
}

/** Sets the rate-limit headers and lets the request on, or refuses it with `Retry-After`. */
function answer(
  reply: FastifyReply,
  rule: Rule,
  decision: RateLimitDecision,
  done: HookHandlerDoneFunction,
): void {
  setHeaders(reply, rule, decision);
  if (decision.allowed) return done();
  const retryAfter = Math.max(1, seconds(decision.retryAfterMs ?? decision.resetMs));
  reply.header('retry-after', String(retryAfter));
  // The error handler keeps the headers set above and writes the coded body.
  done(bulwarkError('BWK_ERR_RATELIMIT_EXCEEDED', { policy: decision.policy, retryAfter }));
}

function setHeaders(reply: FastifyReply, rule: Rule, decision: RateLimitDecision): void {
  reply.header('ratelimit-policy', rule.policyHeader);
  reply.header('ratelimit', `"${decision.policy}";r=${decision.remaining};t=${seconds(decision.resetMs)}`);
}

/**
 * Rate limiting for Fastify (`name: 'bulwark-rate-limit'`): in `onRequest`, each limited route
 * consumes from the limiter under its rule (route `config.rateLimit`, else `routes[url]`, else
 * `default`) and answers with the IETF draft headers `RateLimit-Policy: "<policy>";q=<limit>;w=<s>`
 * and `RateLimit: "<policy>";r=<remaining>;t=<s to reset>`. A refusal throws
 * `BWK_ERR_RATELIMIT_EXCEEDED` (HTTP 429) with `Retry-After` in seconds; Bulwark's error handler
 * turns it into the coded error body. Routes with `false` are not counted and get no headers.
 * Register it at the root (it is not encapsulated), before the routes it should validate.
 */
export const rateLimit: FastifyPluginAsync<RateLimitPluginOptions> = fp(rateLimitPlugin, {
  fastify: '5.x',
  name: 'bulwark-rate-limit',
});

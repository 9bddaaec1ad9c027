import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { EvaluationContext, FlagValue } from '../flags/types.js';
import type { Bulwark } from '../runtime/create.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Evaluates a flag for this request (context from the plugin's `flags.context`) and remembers
     * the variant served, so the response's outcome reaches guarded rollouts. Present when the
     * plugin is registered with the `flags` option.
     */
    flag<T extends FlagValue>(key: string, defaultValue: T): T;
  }
}

/** Options of request-scoped flags (the plugin's `flags` option). */
export interface RequestFlagsOptions {
  /** The evaluation context of a request (default `{ targetingKey: request.ip }`). */
  context?: (request: FastifyRequest) => EvaluationContext;
}

/**
 * `request.flag(key, default)`, and an `onResponse` hook that reports, for every flag a request
 * evaluated, the variant it was served with the outcome (a 5xx is an error; the latency is the
 * response time) to `bulwark.rollouts` — the data guarded progressive rollouts decide on. Requests
 * that evaluate no flag cost one map lookup.
 */
export function registerRequestFlags(
  app: FastifyInstance,
  bulwark: Bulwark,
  opts: RequestFlagsOptions,
): void {
  const contextOf = opts.context ?? ((request: FastifyRequest) => ({ targetingKey: request.ip }));
  const served = new WeakMap<FastifyRequest, Map<string, string | undefined>>();
  app.decorateRequest('flag', function flag<
    T extends FlagValue,
  >(this: FastifyRequest, key: string, defaultValue: T): T {
    const details = bulwark.flags.evaluate(key, contextOf(this), defaultValue);
    let flags = served.get(this);
    if (flags === undefined) {
      flags = new Map();
      served.set(this, flags);
    }
    flags.set(key, details.variant);
    return details.value;
  });
  app.addHook('onResponse', async (request, reply) => {
    const flags = served.get(request);
    if (flags === undefined) return;
    const outcome = { error: reply.statusCode >= 500, latencyMs: reply.elapsedTime };
    for (const [key, variant] of flags) bulwark.rollouts.observe(key, variant, outcome);
  });
}

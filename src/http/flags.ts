import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { EvaluationContext, FlagValue } from '../flags/types.js';
import type { Bulwark } from '../runtime/create.js';
import { onRequestAnswered } from './request-observer.js';

/** The flags a request evaluated: key, variant, key, variant, ... (null until its first). */
const kServed = Symbol('bulwark.flags.served');

declare module 'fastify' {
  interface FastifyRequest {
    [kServed]: (string | undefined)[] | null | undefined;
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
 * that evaluate no flag cost one property read.
 */
export function registerRequestFlags(
  app: FastifyInstance,
  bulwark: Bulwark,
  opts: RequestFlagsOptions,
): void {
  const contextOf = opts.context ?? ((request: FastifyRequest) => ({ targetingKey: request.ip }));
  app.decorateRequest(kServed, null);
  app.decorateRequest('flag', function flag<
    T extends FlagValue,
  >(this: FastifyRequest, key: string, defaultValue: T): T {
    const details = bulwark.flags.evaluate(key, contextOf(this), defaultValue);
    (this[kServed] ??= []).push(key, details.variant);
    return details.value;
  });
  onRequestAnswered(app, bulwark, (request, reply) => {
    // Undefined on requests of contexts the slot was not decorated in (health, metrics, the admin
    // API, 404s): the controller sees every request of the server.
    const served = request[kServed];
    if (served === null || served === undefined) return;
    const outcome = { error: reply.statusCode >= 500, latencyMs: reply.elapsedTime };
    for (let i = 0; i < served.length; i += 2) bulwark.rollouts.observe(served[i]!, served[i + 1], outcome);
  });
}

import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Bulwark } from '../runtime/create.js';

const Count = Type.Integer({ minimum: 0 });

const Upstream = Type.Object({
  name: Type.String(),
  origin: Type.Union([Type.String(), Type.Null()], {
    description: 'null for a name used only with protect()',
  }),
  breaker: Type.Enum(['closed', 'half-open', 'open']),
  killed: Type.Boolean({ description: 'the kill switch is on (the flag bulwark.outbound.<name> is off)' }),
  calls: Type.Object(
    {
      success: Count,
      failure: Count,
      deadline: Count,
      open: Count,
      throttled: Count,
      killed: Count,
    },
    { description: 'calls since start by outcome' },
  ),
  retries: Count,
  throttle: Type.Union([
    Type.Object({ requests: Count, accepts: Count, rejectProbability: Type.Number() }),
    Type.Null(),
  ]),
  retryBudget: Type.Number({ description: 'retries the budget holds now' }),
  lastFailure: Type.Union([
    Type.Object({
      at: Type.Integer({ description: 'ms since the epoch' }),
      code: Type.String(),
      message: Type.String(),
    }),
    Type.Null(),
  ]),
});

/**
 * GET /admin/api/outbound: every upstream of `bulwark.http` and every name used with
 * `bulwark.protect`: its breaker state, kill switch, calls by outcome, retries, throttle and retry
 * budget now, and its last failure.
 */
export function registerOutboundRoutes(admin: FastifyInstance, bulwark: Pick<Bulwark, 'http'>): void {
  admin.withTypeProvider<TypeBoxTypeProvider>().get(
    '/outbound',
    {
      schema: {
        tags: ['admin'],
        summary: 'Outbound upstreams: breaker state, kill switch, calls by outcome, last failure',
        security: [{ adminKey: [] }],
        response: { 200: Type.Array(Upstream) },
      },
    },
    () => bulwark.http.upstreams(),
  );
}

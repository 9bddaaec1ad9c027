import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Bulwark } from '../runtime/create.js';
import { attention, type AttentionOptions } from './attention.js';

const Item = Type.Object({
  severity: Type.Enum(['critical', 'warning', 'info']),
  verdict: Type.String({
    description:
      'one word: degraded, forced, lost, firing, dead, stuck, paused, new, regressed, parked, restarting, unavailable',
  }),
  title: Type.String(),
  detail: Type.String(),
  link: Type.String({ description: 'a console path' }),
});

/**
 * `GET /overview`: `{ attention, generatedAt }`, what needs an operator's attention now, worst first
 * (see {@link attention}): degraded or forced dependencies, lost instances, firing alerts, queues
 * with dead or stuck jobs, error groups new or regressed in the last hour, parked or restarting
 * supervisor slots; at most 20 items per source. The key charts come from `/metrics/history`.
 * Register inside the authenticated, audited admin scope: it checks no key itself.
 */
export function registerOverviewRoutes(
  admin: FastifyInstance,
  bulwark: Bulwark,
  options: AttentionOptions = {},
): void {
  admin.withTypeProvider<TypeBoxTypeProvider>().get(
    '/overview',
    {
      schema: {
        tags: ['admin'],
        summary: 'What needs attention now, worst first, each with a one-word verdict and a console link',
        security: [{ adminKey: [] }],
        response: {
          200: Type.Object({ attention: Type.Array(Item), generatedAt: Type.Integer() }),
        },
      },
    },
    async () => ({ attention: await attention(bulwark, options), generatedAt: (options.now ?? Date.now)() }),
  );
}

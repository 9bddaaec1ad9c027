import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import type { Bulwark } from '../runtime/create.js';

const Measurement = Type.Object({
  at: Type.Integer({ description: 'ms since the epoch' }),
  shedPerSecond: Type.Number(),
  limit: Type.Number({ description: "the load shedder's concurrency limit" }),
  rssBytes: Type.Number(),
  heapUsedBytes: Type.Number(),
});

const Degradation = Type.Object({
  configured: Type.Boolean({ description: 'false without the degradation option' }),
  level: Type.Integer({ description: '0: every feature on' }),
  pressing: Type.Array(Type.String(), { description: 'the pressure read at the last check' }),
  levels: Type.Array(
    Type.Object({
      name: Type.String(),
      description: Type.Optional(Type.String()),
      flags: Type.Array(Type.String()),
    }),
  ),
  steps: Type.Array(
    Type.Object({
      at: Type.Integer(),
      direction: Type.Enum(['enter', 'leave']),
      level: Type.Integer(),
      name: Type.String(),
      reason: Type.String(),
      flags: Type.Array(Type.String(), { description: 'the flags this step turned off or back on' }),
      before: Measurement,
      after: Type.Optional(Measurement),
    }),
    { description: 'the last 50 steps, newest first' },
  ),
});

/**
 * `GET /degradation`: the degradation controller's levels, the level now, what presses and its last
 * steps with the measurements before and after each. Register inside the admin scope.
 */
export function registerDegradationRoutes(admin: FastifyInstance, bulwark: Bulwark): void {
  admin.withTypeProvider<TypeBoxTypeProvider>().get(
    '/degradation',
    {
      schema: {
        tags: ['admin'],
        summary: 'The degradation controller: its levels, the level now, what presses, its last steps',
        security: [{ adminKey: [] }],
        response: { 200: Degradation },
      },
    },
    async () => {
      const controller = bulwark.degradation;
      if (controller === undefined)
        return { configured: false, level: 0, pressing: [], levels: [], steps: [] };
      return {
        configured: true,
        level: controller.level,
        pressing: controller.pressing,
        levels: controller.levels.map((l) => ({
          name: l.name,
          flags: l.flags,
          ...(l.description === undefined ? {} : { description: l.description }),
        })),
        steps: controller.steps,
      };
    },
  );
}

// The admin API of guarded rollouts (a flag's percentage raised step by step while its outcomes
// hold up against the control's, docs/flags.md): read one, start one, stop one. Start and stop are
// audited in the flag's history by the rollout service.
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Bulwark } from '../runtime/create.js';
import { adminActor } from './actor.js';
import { flagActor, KeyParams, open, Reason, ReasonBody, requireFlag, security } from './flags.js';

const Arm = Type.Object({
  samples: Type.Integer(),
  errors: Type.Integer(),
  latencyMsSum: Type.Number(),
});
const Decision = Type.Object({
  action: Type.Enum(['hold', 'advance', 'complete', 'rollback']),
  why: Type.String(),
  to: Type.Optional(Type.Integer()),
});
const Plan = Type.Object(
  {
    steps: Type.Array(Type.Number({ exclusiveMinimum: 0, maximum: 100 }), {
      minItems: 1,
      maxItems: 20,
      description: 'percentages in increasing order, e.g. [10, 50, 100]',
    }),
    stepMs: Type.Integer({ minimum: 0, description: 'least time at each step before advancing' }),
    minSamples: Type.Integer({ minimum: 1, description: 'outcomes needed in each arm before deciding' }),
    maxErrorRateIncrease: Type.Number({
      minimum: 0,
      maximum: 1,
      description: 'the treatment’s error rate may exceed the control’s by at most this (absolute)',
    }),
    maxLatencyRatio: Type.Number({
      minimum: 1,
      description: 'the treatment’s mean latency may be at most this × the control’s',
    }),
  },
  { additionalProperties: false },
);
const Progress = Type.Object({
  state: Type.Object(
    {
      flag: Type.String(),
      plan: Plan,
      step: Type.Integer({ description: 'index into plan.steps' }),
      stepStartedAt: Type.Integer(),
      status: Type.Enum(['running', 'completed', 'rolled-back', 'aborted']),
      why: Type.String(),
      updatedAt: Type.Integer(),
    },
    open,
  ),
  treatment: Arm,
  control: Arm,
  verdict: Type.Union([Decision, Type.Null()], {
    description: 'what the guard would decide now; null once the rollout stopped',
  }),
});

/** `GET|PUT /flags/:key/guarded-rollout` and `POST /flags/:key/guarded-rollout/abort`. */
export function registerGuardedRolloutRoutes(admin: FastifyInstance, bulwark: Bulwark): void {
  const typed = admin.withTypeProvider<TypeBoxTypeProvider>();
  const flags = bulwark.flags;
  const changed = (key: string, action: string, reason: string | undefined) =>
    bulwark.logger.warn({ flag: key, action, reason }, 'flag changed by an admin');
  const guarded = '/flags/:key/guarded-rollout';

  typed.get(
    guarded,
    {
      schema: {
        tags: ['admin'],
        summary: 'The flag’s guarded rollout: its state, the outcomes of each arm at its step, the verdict',
        description: '`rollout` is null when the flag never had one.',
        security,
        params: KeyParams,
        response: { 200: Type.Object({ rollout: Type.Union([Progress, Type.Null()]) }) },
      },
    },
    async (request) => {
      const flag = requireFlag(flags, request.params.key);
      return { rollout: (await bulwark.rollouts.progress(flag.key)) ?? null };
    },
  );

  typed.put(
    guarded,
    {
      schema: {
        tags: ['admin'],
        summary: 'Start a guarded rollout at its first step (replaces any earlier one)',
        security,
        params: KeyParams,
        body: Type.Object({ plan: Plan, reason: Reason }, { additionalProperties: false }),
        response: { 200: Type.Object({ rollout: Progress }) },
      },
    },
    async (request) => {
      const flag = requireFlag(flags, request.params.key);
      const { plan, reason } = request.body;
      await bulwark.rollouts.start(flag.key, plan, flagActor(adminActor(request), reason));
      changed(flag.key, 'flag.guard.start', reason);
      return { rollout: (await bulwark.rollouts.progress(flag.key))! };
    },
  );

  typed.post(
    `${guarded}/abort`,
    {
      schema: {
        tags: ['admin'],
        summary: 'Stop a guarded rollout where it is (the percentage stays)',
        security,
        params: KeyParams,
        body: ReasonBody,
        response: { 200: Type.Object({ rollout: Progress }) },
      },
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) => {
      const flag = requireFlag(flags, request.params.key);
      await bulwark.rollouts.abort(flag.key, flagActor(adminActor(request), request.body.reason));
      changed(flag.key, 'flag.guard.abort', request.body.reason);
      return { rollout: (await bulwark.rollouts.progress(flag.key))! };
    },
  );
}

import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { AlertEngine } from '../alerts/engine.js';
import { adminActor } from './actor.js';

const security = [{ adminKey: [] }];

/**
 * The alerting admin routes: rules with their states, the notification outbox, and a test
 * notification to one receiver (sent at once, not through the outbox).
 */
export function registerAlertRoutes(admin: FastifyInstance, alerts: AlertEngine): void {
  const typed = admin.withTypeProvider<TypeBoxTypeProvider>();
  typed.get(
    '/alerts',
    {
      schema: {
        tags: ['admin'],
        summary: 'Alert rules with their state (inactive, pending, firing, nodata, error)',
        security,
        response: {
          200: Type.Object({
            rules: Type.Array(
              Type.Object({
                id: Type.String(),
                severity: Type.String(),
                summary: Type.String(),
                series: Type.String(),
                state: Type.String(),
                since: Type.Integer(),
                value: Type.Optional(Type.Number()),
                transitions: Type.Integer(),
              }),
            ),
          }),
        },
      },
    },
    async () => ({
      rules: (await alerts.rules()).map(({ rule, status }) => ({
        id: rule.id,
        severity: rule.severity,
        summary: rule.summary,
        series: rule.series,
        state: status.state,
        since: status.since,
        ...(status.value === undefined ? {} : { value: status.value }),
        transitions: status.transitions,
      })),
    }),
  );

  typed.get(
    '/alerts/outbox',
    {
      schema: {
        tags: ['admin'],
        summary: 'Notifications, newest first: pending (with attempts and the last error), sent, dead',
        security,
        querystring: Type.Object({
          state: Type.Optional(Type.Enum(['pending', 'sent', 'dead', 'silenced', 'inhibited'])),
          limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
        }),
        response: { 200: Type.Object({ notifications: Type.Array(Type.Unknown()) }) },
      },
    },
    async (request) => ({
      notifications: await alerts.outbox.list({
        limit: request.query.limit,
        ...(request.query.state === undefined ? {} : { state: request.query.state }),
      }),
    }),
  );

  const Matchers = Type.Record(
    Type.String({ minLength: 1, maxLength: 100 }),
    Type.String({ maxLength: 200 }),
  );
  typed.get(
    '/alerts/silences',
    {
      schema: {
        tags: ['admin'],
        summary: 'Silences not yet ended (active or future), soonest ending first',
        security,
        response: { 200: Type.Object({ silences: Type.Array(Type.Unknown()) }) },
      },
    },
    async () => ({ silences: await alerts.silences.list(Date.now()) }),
  );

  typed.post(
    '/alerts/silences',
    {
      schema: {
        tags: ['admin'],
        summary: 'Silence matching alerts (label matchers, e.g. {"alertname":"bulwark.memory"}) for a while',
        security,
        body: Type.Object(
          {
            matchers: Matchers,
            durationMs: Type.Integer({ minimum: 1_000, maximum: 90 * 86_400_000 }),
            startsAt: Type.Optional(Type.Integer({ minimum: 0 })),
            comment: Type.String({ minLength: 1, maxLength: 500 }),
            createdBy: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Unknown() },
      },
    },
    async (request, reply) => {
      const startsAt = request.body.startsAt ?? Date.now();
      const silence = await alerts.silences.add({
        matchers: request.body.matchers,
        startsAt,
        endsAt: startsAt + request.body.durationMs,
        createdBy: request.body.createdBy ?? adminActor(request),
        comment: request.body.comment,
      });
      void reply.code(201);
      return silence;
    },
  );

  typed.delete(
    '/alerts/silences/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'End a silence now',
        security,
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: { 200: Type.Object({ expired: Type.Boolean() }) },
      },
    },
    async (request) => ({ expired: await alerts.silences.expire(request.params.id) }),
  );

  typed.post(
    '/alerts/:rule/ack',
    {
      schema: {
        tags: ['admin'],
        summary: 'Acknowledge a firing alert: no repeats, no escalation until it resolves or fires anew',
        security,
        params: Type.Object({ rule: Type.String({ maxLength: 100 }) }),
        body: Type.Object(
          {
            comment: Type.String({ maxLength: 500 }),
            by: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Unknown() },
      },
    },
    async (request) =>
      alerts.ack(request.params.rule, request.body.by ?? adminActor(request), request.body.comment),
  );

  typed.post(
    '/alerts/test',
    {
      schema: {
        tags: ['admin'],
        summary: 'Send a test notification to one receiver now; answers whether it was delivered',
        security,
        body: Type.Object(
          { receiver: Type.String({ minLength: 1, maxLength: 100 }) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ delivered: Type.Boolean(), error: Type.Optional(Type.String()) }) },
      },
    },
    async (request) => alerts.test(request.body.receiver),
  );
}

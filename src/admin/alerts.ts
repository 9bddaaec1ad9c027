import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { AlertEngine } from '../alerts/engine.js';

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
          state: Type.Optional(Type.Enum(['pending', 'sent', 'dead'])),
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

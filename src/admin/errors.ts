import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { ErrorTracker } from '../tracker/index.js';
import { adminActor } from './actor.js';

const security = [{ adminKey: [] }];
const State = Type.Enum(['open', 'resolved', 'ignored']);
const Source = Type.Enum(['server', 'browser']);
const Fingerprint = Type.Object({ fingerprint: Type.String({ pattern: '^[0-9a-f]{1,64}$' }) });

const Group = Type.Object({
  fingerprint: Type.String(),
  type: Type.String(),
  message: Type.String(),
  culprit: Type.String(),
  source: Source,
  state: State,
  count: Type.Integer(),
  firstSeen: Type.Integer(),
  lastSeen: Type.Integer(),
  firstRelease: Type.String(),
  lastRelease: Type.String(),
  resolvedAt: Type.Optional(Type.Integer()),
  regressions: Type.Integer(),
});

/**
 * The error tracker's admin routes: list groups (by state and source, most recently seen first),
 * one group with its samples, and resolve / ignore / re-open (audited with the reason).
 */
export function registerErrorRoutes(admin: FastifyInstance, errors: ErrorTracker): void {
  const typed = admin.withTypeProvider<TypeBoxTypeProvider>();
  typed.get(
    '/errors',
    {
      schema: {
        tags: ['admin'],
        summary: 'Error groups, most recently seen first',
        security,
        querystring: Type.Object({
          state: Type.Optional(State),
          source: Type.Optional(Source),
          limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
        }),
        response: { 200: Type.Object({ groups: Type.Array(Group) }) },
      },
    },
    async (request) => {
      await errors.flush();
      const { state, source, limit } = request.query;
      return {
        groups: await errors.groups({
          limit,
          ...(state === undefined ? {} : { state }),
          ...(source === undefined ? {} : { source }),
        }),
      };
    },
  );

  typed.get(
    '/errors/:fingerprint',
    {
      schema: {
        tags: ['admin'],
        summary: 'One error group with its samples (request and user context), newest first',
        security,
        params: Fingerprint,
        querystring: Type.Object({ samples: Type.Integer({ minimum: 1, maximum: 100, default: 20 }) }),
        response: { 200: Type.Object({ group: Group, samples: Type.Array(Type.Unknown()) }) },
      },
    },
    async (request) => {
      await errors.flush();
      return errors.group(request.params.fingerprint, request.query.samples);
    },
  );

  typed.put(
    '/errors/:fingerprint/state',
    {
      schema: {
        tags: ['admin'],
        summary:
          'Resolve, ignore or re-open an error group (audited); a resolved group re-opens when it recurs',
        security,
        params: Fingerprint,
        body: Type.Object(
          { state: State, reason: Type.Optional(Type.String({ maxLength: 500 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ group: Group }) },
      },
    },
    async (request) => ({
      group: await errors.setState(
        request.params.fingerprint,
        request.body.state,
        adminActor(request),
        request.body.reason,
      ),
    }),
  );
}

import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { ErrorSample, ErrorTracker } from '../tracker/index.js';
import { adminActor } from './actor.js';

const security = [{ adminKey: [] }];
const State = Type.Enum(['open', 'resolved', 'ignored']);
const Source = Type.Enum(['server', 'browser']);
const Fingerprint = Type.Object({ fingerprint: Type.String({ pattern: '^[0-9a-f]{1,64}$' }) });

/** Rows of a list answer at most (the console's pages ask for 50). */
const MAX_ROWS = 200;
/** Characters of a sample's stack and message in a group's answer; the whole sample is one more call. */
export const SAMPLE_TEXT_MAX = 2_000;
/** Breadcrumbs of a sample in a group's answer (the newest). */
export const SAMPLE_BREADCRUMBS_MAX = 10;

const Group = Type.Object({
  fingerprint: Type.String(),
  type: Type.String(),
  message: Type.String(),
  culprit: Type.String(),
  source: Source,
  state: State,
  count: Type.Integer(),
  users: Type.Integer({ description: 'distinct users affected (an estimate: exact for a few, ~3 % beyond)' }),
  firstSeen: Type.Integer(),
  lastSeen: Type.Integer(),
  firstRelease: Type.String(),
  lastRelease: Type.String(),
  resolvedAt: Type.Optional(Type.Integer()),
  regressions: Type.Integer(),
});
const Hourly = Type.Array(Type.Integer(), {
  description: 'occurrences in each of the last 24 hours, oldest first (the last is the current hour)',
});
const GroupWithHours = Type.Object({ ...Group.properties, hourly: Hourly });

/** `<lastSeen>.<fingerprint>`: where the next page of groups starts. */
const CURSOR = /^(\d{1,16})\.([0-9a-f]{1,64})$/;

/**
 * A sample as a group's answer carries it: the stack and message cut to {@link SAMPLE_TEXT_MAX}
 * characters and the breadcrumbs to the newest {@link SAMPLE_BREADCRUMBS_MAX}, with `truncated`
 * naming what was cut and how long it was (`GET .../samples/:id` answers the whole sample).
 */
export function shortSample(sample: ErrorSample): ErrorSample & { truncated?: Record<string, number> } {
  const truncated: Record<string, number> = {};
  const short: ErrorSample = { ...sample };
  for (const field of ['stack', 'message'] as const) {
    const text = sample[field];
    if (text !== undefined && text.length > SAMPLE_TEXT_MAX) {
      truncated[field] = text.length;
      short[field] = text.slice(0, SAMPLE_TEXT_MAX);
    }
  }
  const crumbs = sample.breadcrumbs;
  if (crumbs !== undefined && crumbs.length > SAMPLE_BREADCRUMBS_MAX) {
    truncated['breadcrumbs'] = crumbs.length;
    short.breadcrumbs = crumbs.slice(-SAMPLE_BREADCRUMBS_MAX);
  }
  return Object.keys(truncated).length === 0 ? short : { ...short, truncated };
}

/**
 * The error tracker's admin routes: a page of groups (by state, source and text, most recently seen
 * first, each with its last 24 h by hour), one group with its samples (long values cut, each sample
 * whole on its own route), and resolve / ignore / re-open (audited with the caller as actor).
 */
export function registerErrorRoutes(admin: FastifyInstance, errors: ErrorTracker): void {
  const typed = admin.withTypeProvider<TypeBoxTypeProvider>();
  typed.get(
    '/errors',
    {
      schema: {
        tags: ['admin'],
        summary: 'Error groups, most recently seen first, a page at a time, each with its last 24 h by hour',
        description:
          'Three queries per page (the groups, their total, their hourly counts), whatever its size. `next` is the `after` of the following page; null on the last.',
        security,
        querystring: Type.Object({
          state: Type.Optional(State),
          source: Type.Optional(Source),
          q: Type.Optional(
            Type.String({
              maxLength: 200,
              description: 'a case-insensitive part of the type, message or culprit',
            }),
          ),
          after: Type.Optional(
            Type.String({ pattern: CURSOR.source, description: 'the `next` of the page before' }),
          ),
          limit: Type.Integer({ minimum: 1, maximum: MAX_ROWS, default: 50 }),
        }),
        response: {
          200: Type.Object({
            groups: Type.Array(GroupWithHours),
            total: Type.Integer(),
            next: Type.Union([Type.String(), Type.Null()]),
          }),
        },
      },
    },
    async (request) => {
      await errors.flush();
      const { state, source, q, after, limit } = request.query;
      const cursor = after === undefined ? undefined : CURSOR.exec(after);
      const page = await errors.page({
        limit,
        ...(state === undefined ? {} : { state }),
        ...(source === undefined ? {} : { source }),
        ...(q === undefined ? {} : { q }),
        ...(cursor == null ? {} : { after: { lastSeen: Number(cursor[1]), fingerprint: cursor[2] ?? '' } }),
      });
      return {
        groups: page.groups,
        total: page.total,
        next: page.next === undefined ? null : `${page.next.lastSeen}.${page.next.fingerprint}`,
      };
    },
  );

  typed.get(
    '/errors/:fingerprint',
    {
      schema: {
        tags: ['admin'],
        summary: 'One error group with its last 24 h by hour and its samples, newest first (long values cut)',
        description: `Each sample's stack and message are cut to ${SAMPLE_TEXT_MAX} characters and its breadcrumbs to the newest ${SAMPLE_BREADCRUMBS_MAX}; \`truncated\` names what was cut with its full length, and \`GET /errors/:fingerprint/samples/:id\` answers the whole sample.`,
        security,
        params: Fingerprint,
        querystring: Type.Object({ samples: Type.Integer({ minimum: 1, maximum: 100, default: 20 }) }),
        response: { 200: Type.Object({ group: GroupWithHours, samples: Type.Array(Type.Unknown()) }) },
      },
    },
    async (request) => {
      await errors.flush();
      const found = await errors.group(request.params.fingerprint, request.query.samples);
      return { group: found.group, samples: found.samples.map(shortSample) };
    },
  );

  typed.get(
    '/errors/:fingerprint/samples/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'One sample of an error group, whole (stack, message, request, user, tags, breadcrumbs)',
        security,
        params: Type.Object({ ...Fingerprint.properties, id: Type.Integer({ minimum: 1 }) }),
        response: { 200: Type.Unknown() },
      },
    },
    async (request) => errors.sample(request.params.fingerprint, request.params.id),
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

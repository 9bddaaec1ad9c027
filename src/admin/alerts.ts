import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { AlertEngine } from '../alerts/engine.js';
import type { OutboxEntry } from '../alerts/outbox.js';
import { alertPage } from '../alerts/views.js';
import { bulwarkError } from '../errors/index.js';
import type { Store } from '../store/types.js';
import { adminActor } from './actor.js';

const security = [{ adminKey: [] }];
/** Rows of a list answer at most. */
const MAX_ROWS = 200;
/** Characters of a notification's payload in the outbox list; `GET /alerts/outbox/:id` has it whole. */
export const PAYLOAD_MAX = 500;

const OutboxState = Type.Enum(['pending', 'sent', 'dead', 'silenced', 'inhibited']);
const Notification = Type.Object({
  id: Type.Integer(),
  key: Type.String(),
  receiver: Type.String(),
  state: OutboxState,
  attempts: Type.Integer(),
  nextAt: Type.Integer(),
  lastError: Type.Optional(Type.String()),
  createdAt: Type.Integer(),
  sentAt: Type.Optional(Type.Integer()),
  rule: Type.Optional(Type.String()),
  status: Type.Optional(Type.String({ description: 'firing or resolved' })),
  summary: Type.Optional(Type.String()),
  payload: Type.String(),
  payloadChars: Type.Integer({ description: 'the whole payload’s length (the list cuts it)' }),
});
const Ack = Type.Object({
  rule: Type.String(),
  transition: Type.Integer(),
  by: Type.String(),
  at: Type.Integer(),
  comment: Type.String(),
});
const Silence = Type.Object({
  id: Type.String(),
  matchers: Type.Record(Type.String(), Type.String()),
  startsAt: Type.Integer(),
  endsAt: Type.Integer(),
  createdBy: Type.String(),
  comment: Type.String(),
});
const Rule = Type.Object({
  id: Type.String(),
  severity: Type.String(),
  summary: Type.String(),
  series: Type.String(),
  labels: Type.Record(Type.String(), Type.String(), {
    description: 'what silences match: alertname, severity and the rule’s labels',
  }),
  state: Type.String(),
  since: Type.Integer(),
  value: Type.Optional(Type.Number()),
  transitions: Type.Integer(),
  ack: Type.Optional(Ack),
  silence: Type.Optional(
    Type.Object({ id: Type.String(), endsAt: Type.Integer(), createdBy: Type.String() }),
  ),
  anomaly: Type.Optional(
    Type.Object(
      {
        baseline: Type.Optional(Type.Number()),
        band: Type.Optional(Type.Number({ description: 'half-width of the firing band' })),
        days: Type.Integer({ description: 'previous days with points at this time' }),
        samples: Type.Integer({ description: 'recent points used' }),
        reason: Type.Optional(Type.String({ description: 'why there is no baseline yet' })),
      },
      { description: 'an anomaly rule at its last evaluation on this instance' },
    ),
  ),
});
const Next = Type.Union([Type.String(), Type.Null()], {
  description: 'the `after` (outbox: `before`) of the following page; null on the last',
});

/** An outbox entry as the list shows it: the notification's rule, status and summary, the payload cut. */
function listed(entry: OutboxEntry) {
  let parsed: { rule?: unknown; status?: unknown; summary?: unknown } = {};
  try {
    parsed = JSON.parse(entry.payload) as typeof parsed;
  } catch {
    // Not JSON: shown as text.
  }
  const text = (value: unknown) => (typeof value === 'string' ? value.slice(0, PAYLOAD_MAX) : undefined);
  const { payload, lastError, sentAt, ...rest } = entry;
  return {
    ...rest,
    ...(lastError === undefined ? {} : { lastError }),
    ...(sentAt === undefined ? {} : { sentAt }),
    ...(text(parsed.rule) === undefined ? {} : { rule: text(parsed.rule) }),
    ...(text(parsed.status) === undefined ? {} : { status: text(parsed.status) }),
    ...(text(parsed.summary) === undefined ? {} : { summary: text(parsed.summary) }),
    payload: payload.slice(0, PAYLOAD_MAX),
    payloadChars: payload.length,
  };
}

/**
 * The alerting admin routes (without alerting configured, only `GET /alerts`, answering so): a page
 * of rules with their states (acknowledgement and silence included), the notification outbox a page at a time (each notification whole on its own route),
 * silences (list, create, expire), acknowledgements, the receivers and a test notification to one
 * of them (sent at once, not through the outbox). Silences and acknowledgements are made as, and
 * audited with, the caller (`adminActor`).
 */
export function registerAlertRoutes(
  admin: FastifyInstance,
  alerts: AlertEngine | undefined,
  store: Store,
): void {
  const typed = admin.withTypeProvider<TypeBoxTypeProvider>();
  typed.get(
    '/alerts',
    {
      schema: {
        tags: ['admin'],
        summary: 'Alert rules with their state (inactive, pending, firing, nodata, error), a page at a time',
        description:
          '`state=active` (firing and pending: firing first, the longest first), one state, or `all` (the default: every configured rule, by id). `q` matches a part of the id or summary. Each firing rule carries its acknowledgement, and every rule the silence covering it now. Without alerting configured: `configured: false` and no rule (the other alert routes are not there).',
        security,
        querystring: Type.Object({
          state: Type.Enum(['all', 'active', 'firing', 'pending', 'inactive', 'nodata', 'error'], {
            default: 'all',
          }),
          q: Type.Optional(Type.String({ maxLength: 200 })),
          after: Type.Optional(
            Type.String({ maxLength: 1_000, description: 'the `next` of the page before' }),
          ),
          limit: Type.Integer({ minimum: 1, maximum: MAX_ROWS, default: 100 }),
        }),
        response: {
          200: Type.Object({
            configured: Type.Boolean({ description: 'false: no alerting configuration' }),
            rules: Type.Array(Rule),
            total: Type.Integer(),
            next: Next,
          }),
        },
      },
    },
    async (request) => {
      if (alerts === undefined) return { configured: false, rules: [], total: 0, next: null };
      const { state, q, after, limit } = request.query;
      const page = await alertPage(
        {
          db: store.db,
          rules: alerts.configuredRules,
          acks: (rules) => alerts.silences.acks(rules),
          silences: () => alerts.silences.list(Date.now()),
          anomaly: (rule) => alerts.anomaly(rule),
          now: Date.now(),
        },
        { filter: state, q, after, limit },
      );
      return { configured: true, ...page, next: page.next ?? null };
    },
  );
  if (alerts === undefined) return;

  typed.get(
    '/alerts/receivers',
    {
      schema: {
        tags: ['admin'],
        summary: 'The configured receivers, by name and type (nothing else: URLs and keys are secrets)',
        security,
        response: {
          200: Type.Object({
            receivers: Type.Array(Type.Object({ name: Type.String(), type: Type.String() })),
          }),
        },
      },
    },
    async () => ({ receivers: alerts.receivers }),
  );

  typed.get(
    '/alerts/outbox',
    {
      schema: {
        tags: ['admin'],
        summary: 'Notifications, newest first, a page at a time: state, attempts, last error (payload cut)',
        description: `Each payload is cut to ${PAYLOAD_MAX} characters (\`payloadChars\` is its length); \`GET /alerts/outbox/:id\` answers it whole.`,
        security,
        querystring: Type.Object({
          state: Type.Optional(OutboxState),
          before: Type.Optional(Type.Integer({ minimum: 1, description: 'the `next` of the page before' })),
          limit: Type.Integer({ minimum: 1, maximum: MAX_ROWS, default: 100 }),
        }),
        response: { 200: Type.Object({ notifications: Type.Array(Notification), next: Next }) },
      },
    },
    async (request) => {
      const { state, before, limit } = request.query;
      const entries = await alerts.outbox.list({
        limit: limit + 1,
        ...(state === undefined ? {} : { state }),
        ...(before === undefined ? {} : { before }),
      });
      const page = entries.slice(0, limit);
      const last = page.at(-1);
      return {
        notifications: page.map(listed),
        next: entries.length > limit && last !== undefined ? String(last.id) : null,
      };
    },
  );

  typed.get(
    '/alerts/outbox/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'One notification of the outbox, its payload whole',
        security,
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        response: { 200: Type.Unknown() },
      },
    },
    async (request) => {
      const entry = await alerts.outbox.get(request.params.id);
      if (entry === undefined)
        throw bulwarkError('BWK_ERR_ALERTS_NOTIFICATION_NOT_FOUND', { id: request.params.id });
      return entry;
    },
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
        summary: 'Silences not yet ended (active or future), soonest ending first, a page at a time',
        security,
        querystring: Type.Object({
          after: Type.Optional(Type.Integer({ minimum: 0, description: 'the `next` of the page before' })),
          limit: Type.Integer({ minimum: 1, maximum: MAX_ROWS, default: 100 }),
        }),
        response: {
          200: Type.Object({
            silences: Type.Array(Silence),
            total: Type.Integer(),
            next: Type.Union([Type.Integer(), Type.Null()]),
          }),
        },
      },
    },
    async (request) => {
      const { after = 0, limit } = request.query;
      const all = await alerts.silences.list(Date.now());
      return {
        silences: all.slice(after, after + limit),
        total: all.length,
        next: after + limit < all.length ? after + limit : null,
      };
    },
  );

  typed.post(
    '/alerts/silences',
    {
      schema: {
        tags: ['admin'],
        summary: 'Silence matching alerts (label matchers, e.g. {"alertname":"bulwark.memory"}) for a while',
        description: 'Created by the caller (its audit actor); audited as `alerts.silence`.',
        security,
        body: Type.Object(
          {
            matchers: Matchers,
            durationMs: Type.Integer({ minimum: 1_000, maximum: 90 * 86_400_000 }),
            startsAt: Type.Optional(Type.Integer({ minimum: 0 })),
            comment: Type.String({ minLength: 1, maxLength: 500 }),
          },
          { additionalProperties: false },
        ),
        response: { 201: Silence },
      },
    },
    async (request, reply) => {
      const actor = adminActor(request);
      const startsAt = request.body.startsAt ?? Date.now();
      const silence = await alerts.silences.add({
        matchers: request.body.matchers,
        startsAt,
        endsAt: startsAt + request.body.durationMs,
        createdBy: actor,
        comment: request.body.comment,
      });
      await store.audit.append({
        actor,
        action: 'alerts.silence',
        target: `silence:${silence.id}`,
        detail: {
          matchers: silence.matchers,
          startsAt: silence.startsAt,
          endsAt: silence.endsAt,
          comment: silence.comment,
        },
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
        summary: 'End a silence now (audited as `alerts.unsilence`); `expired: false` when there was none',
        security,
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: { 200: Type.Object({ expired: Type.Boolean() }) },
      },
    },
    async (request) => {
      const silence = await alerts.silences.get(request.params.id);
      const expired = await alerts.silences.expire(request.params.id);
      if (expired)
        await store.audit.append({
          actor: adminActor(request),
          action: 'alerts.unsilence',
          target: `silence:${request.params.id}`,
          detail: silence === undefined ? null : { matchers: silence.matchers, comment: silence.comment },
        });
      return { expired };
    },
  );

  typed.post(
    '/alerts/:rule/ack',
    {
      schema: {
        tags: ['admin'],
        summary: 'Acknowledge a firing alert: no repeats, no escalation until it resolves or fires anew',
        description: 'Acknowledged by the caller (its audit actor); audited as `alerts.ack`.',
        security,
        params: Type.Object({ rule: Type.String({ maxLength: 100 }) }),
        body: Type.Object({ comment: Type.String({ maxLength: 500 }) }, { additionalProperties: false }),
        response: { 200: Ack },
      },
    },
    async (request) => alerts.ack(request.params.rule, adminActor(request), request.body.comment),
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

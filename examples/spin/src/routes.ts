// Spin's HTTP API under /api: users, the queue, matches and votes, and the live stream of a user's
// events (Server-Sent Events). Every body is validated by its schema (a 400 naming each bad field);
// a user acts with the bearer token it got when created.
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Histogram } from 'prom-client';
import Type from 'typebox';
import type { Bulwark } from 'bulwark';
import { lazySchemas } from 'bulwark/fastify';
import { GENDERS } from './domain/types.js';
import { spinError } from './errors.js';
import type { QueueStatus, SpinService } from './service.js';
import { tokenDigest, type Answer, type FeedEvent, type Remembered, type SpinUser } from './store.js';

declare module 'fastify' {
  interface FastifyRequest {
    spinUser?: SpinUser;
  }
}

const Gender = Type.Enum([...GENDERS]);
const User = Type.Object({
  id: Type.String(),
  displayName: Type.String(),
  gender: Gender,
  seeking: Type.Array(Gender),
  notify: Type.Object({ match: Type.Boolean(), waitChange: Type.Boolean() }),
  email: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.Integer(),
});
const Estimate = Type.Object({
  estimateKnown: Type.Boolean(),
  p10Ms: Type.Union([Type.Integer(), Type.Null()]),
  p50Ms: Type.Union([Type.Integer(), Type.Null()]),
  p90Ms: Type.Union([Type.Integer(), Type.Null()]),
  sampleSize: Type.Integer(),
  reason: Type.String(),
  sentence: Type.String(),
});
const Status = Type.Union([
  Type.Object({ waiting: Type.Literal(false) }),
  Type.Object({
    waiting: Type.Literal(true),
    joinedAt: Type.Integer(),
    waitedMs: Type.Integer(),
    position: Type.Integer({ description: 'place among those with the same gender and seeking, 1 = first' }),
    estimate: Estimate,
  }),
]);
/**
 * For a route that answers a {@link Status}. A union makes fast-json-stringify check every answer
 * against each branch with Ajv (two validations of the whole status per join), and compiles those
 * checks at the first answer, on the request path of the server's first join. The status is built
 * by the service (SpinService.statusAt), never from input, with the schema's fields and integers,
 * so JSON.stringify writes the same text; the schema still documents the route in /api-docs.
 */
const statusSerializer = { serializerCompiler: () => (data: unknown) => JSON.stringify(data) };
const Match = Type.Object({
  id: Type.String(),
  matchedAt: Type.Integer(),
  partner: Type.Object({ id: Type.String(), displayName: Type.String() }),
  waitedMs: Type.Integer(),
  myVote: Type.Union([Type.Enum(['like', 'pass']), Type.Null()]),
  partnerVote: Type.Union([Type.Enum(['like', 'pass']), Type.Null()]),
  outcome: Type.Enum(['pending', 'success', 'declined']),
});
const DisplayName = Type.String({ minLength: 1, maxLength: 40, pattern: '\\S' });
const Email = Type.String({ format: 'email', maxLength: 200 });
const Notify = Type.Object(
  {
    match: Type.Optional(Type.Boolean({ description: 'an e-mail when you are matched' })),
    waitChange: Type.Optional(
      Type.Boolean({ description: 'an e-mail when your estimated wait changes much' }),
    ),
  },
  { additionalProperties: false },
);
const security = [{ spinUser: [] }];
const IdempotencyKey = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
});

/** How often the stream sends a comment to keep proxies from closing it. */
const HEARTBEAT_MS = 15_000;
/** Events replayed to a stream that resumes (`Last-Event-ID`) at most. */
const REPLAY_LIMIT = 500;

export async function spinRoutes(
  app: FastifyInstance,
  { bulwark, spin }: { bulwark: Bulwark; spin: SpinService },
): Promise<void> {
  lazySchemas(app);
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  const users = bulwark.cache.namespace('spin-users');
  // From a match being written to its event leaving for the user's stream, on the instance the user
  // is connected to (the feed's poll interval is most of it).
  const matchToEvent = new Histogram({
    name: 'spin_match_event_seconds',
    help: 'Time from a match being made to its event being sent on the matched user’s live stream',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [bulwark.metrics.registry],
  });
  // Open streams end when the app closes (a stream never ends by itself, so a close would wait for it).
  const streams = new Set<FastifyReply['raw']>();
  app.addHook('preClose', async () => {
    for (const raw of streams) raw.end();
  });

  /** The user of the request's bearer token (cached 5 min), or a 401. */
  const authenticate = async (request: FastifyRequest): Promise<void> => {
    const token = bearer(request);
    if (token === '')
      throw spinError(
        'SPIN_UNAUTHORIZED',
        'Send the token you got when you signed up: Authorization: Bearer <token>',
      );
    const digest = tokenDigest(token);
    let user = await users.get<SpinUser>(digest);
    if (user === undefined) {
      user = await spin.store.userByDigest(digest);
      if (user === undefined) throw spinError('SPIN_UNAUTHORIZED', 'No user has this token');
      await users.set(digest, user, { ttl: 300_000 });
    }
    request.spinUser = user;
  };
  const me = (request: FastifyRequest): SpinUser => request.spinUser!;

  /**
   * Runs `work` once per `Idempotency-Key` of the user: a retried or replayed request gets the first
   * answer again (with `Idempotent-Replayed: true`), never a second effect.
   */
  const once = async <T>(
    request: FastifyRequest,
    reply: FastifyReply,
    work: () => Promise<{ status: number; body: T }>,
  ): Promise<T> => {
    const idempotency = idempotencyOf(request);
    if (idempotency === undefined) return answer(reply, await work());
    const user = me(request);
    const earlier = await spin.store.remembered(user.id, idempotency.key);
    if (earlier !== undefined) return answer(reply, earlier, idempotency.fingerprint);
    const { status, body } = await work();
    await spin.store.remember(user.id, idempotency.key, idempotency.fingerprint, status, body);
    return answer(reply, { status, body });
  };

  typed.post(
    '/api/users',
    {
      schema: {
        tags: ['spin'],
        summary: 'Sign up: a display name, your gender and whom you seek; answers your token (shown once)',
        body: Type.Object(
          {
            displayName: DisplayName,
            gender: Gender,
            seeking: Type.Array(Gender, { minItems: 1, maxItems: 3, uniqueItems: true }),
            email: Type.Optional(Email),
            notify: Type.Optional(Notify),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ user: User, token: Type.String() }) },
      },
      config: { rateLimit: { by: 'ip', policy: 'spin-signup' } },
    },
    async (request, reply) => {
      const { displayName, gender, seeking, email, notify } = request.body;
      const created = await spin.store.createUser({
        displayName: displayName.trim(),
        gender,
        seeking: seeking as never,
        email,
        notify,
      });
      return reply.code(201).send({ user: view(created.user), token: created.token });
    },
  );

  await app.register(async (authed) => {
    authed.addHook('onRequest', authenticate);
    const api = authed.withTypeProvider<TypeBoxTypeProvider>();
    const perUser = {
      rateLimit: { by: 'user' as const, policy: 'spin-user', user: (r: FastifyRequest) => userKey(r) },
    };

    api.get(
      '/api/me',
      { schema: { tags: ['spin'], summary: 'Who you are', security, response: { 200: User } } },
      async (request) => view(me(request)),
    );

    api.patch(
      '/api/me',
      {
        schema: {
          tags: ['spin'],
          summary:
            'Change your name, your e-mail (null removes it) or which notices you get by e-mail; only the fields sent change',
          security,
          body: Type.Object(
            {
              displayName: Type.Optional(DisplayName),
              email: Type.Optional(Type.Union([Email, Type.Null()])),
              notify: Type.Optional(Notify),
            },
            { additionalProperties: false, minProperties: 1 },
          ),
          response: { 200: User },
        },
        config: perUser,
      },
      async (request) => {
        const { displayName, email, notify } = request.body;
        const user = await spin.store.updateUser(me(request).id, {
          displayName: displayName?.trim(),
          email,
          notify,
        });
        if (user === undefined) throw spinError('SPIN_UNAUTHORIZED', 'No user has this token');
        // This instance reads the user anew at once; others do when the delete reaches them (at once
        // with Redis, else when their copy's 5 minutes run out: notices read the store, never the cache).
        await users.delete(tokenDigest(bearer(request)));
        return view(user);
      },
    );

    api.post(
      '/api/queue/join',
      {
        schema: {
          tags: ['spin'],
          summary: 'Join the queue (idempotent: with an Idempotency-Key a retried join never joins twice)',
          security,
          headers: IdempotencyKey,
          response: { 200: Status },
        },
        ...statusSerializer,
        config: perUser,
      },
      // Not through `once`: the join, its answer and the answer's record are one transaction,
      // shared with the other joins of the moment (SpinService.join).
      async (request, reply) => {
        const idempotency = idempotencyOf(request);
        const result = await spin.join({ user: me(request), ...idempotency });
        return answer(reply, result, result.replayed ? idempotency?.fingerprint : undefined);
      },
    );

    api.delete(
      '/api/queue',
      {
        schema: {
          tags: ['spin'],
          summary: 'Leave the queue',
          security,
          response: { 200: Type.Object({ left: Type.Boolean() }) },
        },
        config: perUser,
      },
      async (request) => ({ left: await spin.store.leave(me(request)) }),
    );

    api.get(
      '/api/queue/status',
      {
        schema: {
          tags: ['spin'],
          summary: 'Where you stand: your place and the wait estimate (a range, how sure, and why)',
          security,
          response: { 200: Status },
        },
        ...statusSerializer,
      },
      async (request) => spin.status(me(request)),
    );

    api.get(
      '/api/matches',
      {
        schema: {
          tags: ['spin'],
          summary: 'Your matches, newest first (before: the matchedAt of the last one shown, to page)',
          security,
          querystring: Type.Object({
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
            before: Type.Optional(Type.Integer({ minimum: 0 })),
          }),
          response: { 200: Type.Object({ matches: Type.Array(Match) }) },
        },
      },
      async (request) => ({
        matches: await spin.store.history(me(request).id, request.query.limit ?? 20, request.query.before),
      }),
    );

    api.post(
      '/api/matches/:id/vote',
      {
        schema: {
          tags: ['spin'],
          summary: 'Like or pass on a match; both like = success. A vote is final.',
          security,
          params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
          headers: IdempotencyKey,
          body: Type.Object({ vote: Type.Enum(['like', 'pass']) }, { additionalProperties: false }),
          response: { 200: Match },
        },
        // A vote settles a match two people wait on: the last to be shed under overload.
        config: { ...perUser, priority: 'critical' as const },
      },
      async (request, reply) =>
        once(request, reply, async () => {
          const result = await spin.store.vote(request.params.id, me(request).id, request.body.vote);
          if (result === undefined) throw spinError('SPIN_MATCH_NOT_FOUND', 'You have no match with this id');
          if (result === 'voted') throw spinError('SPIN_ALREADY_VOTED', 'You already voted on this match');
          return { status: 200, body: result };
        }),
    );

    api.get(
      '/api/events',
      {
        schema: {
          tags: ['spin'],
          summary:
            'Your live events (Server-Sent Events): status, match, outcome; resumes after Last-Event-ID',
          security,
          headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })) }),
        },
        // Open for as long as the user waits: admitted or shed at connect, holding no slot.
        config: { stream: true },
      },
      async (request, reply) => {
        streams.add(reply.raw);
        reply.raw.on('close', () => streams.delete(reply.raw));
        await stream(request, reply, { bulwark, spin, user: me(request), matchToEvent });
      },
    );
  });
}

/** The request's Idempotency-Key and its fingerprint (what a replay must match), if it has one. */
function idempotencyOf(request: FastifyRequest): { key: string; fingerprint: string } | undefined {
  const key = request.headers['idempotency-key'];
  if (typeof key !== 'string' || key === '') return undefined;
  const fingerprint = createHash('sha256')
    .update(`${request.method} ${request.routeOptions.url ?? ''} ${JSON.stringify(request.body ?? null)}`)
    .digest('hex');
  return { key, fingerprint };
}

/**
 * Sends `given`; with `replayOf` (the fingerprint of the request now asking) it is a stored answer,
 * given again only to the same request (`Idempotent-Replayed: true`), a 422 to another one.
 */
function answer<T>(reply: FastifyReply, given: Answer | Remembered, replayOf?: string): T {
  if (replayOf !== undefined) {
    if (!('fingerprint' in given) || given.fingerprint !== replayOf)
      throw spinError('SPIN_IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used for another request');
    void reply.header('idempotent-replayed', 'true');
  }
  void reply.code(given.status);
  return given.body as T;
}

/**
 * A place as far as the live stream's updates tell it apart: exact among the first 20, beyond that
 * in steps of ~5% (a place of 4,000 is told again at 3,800). With 10,000 waiting and matches made
 * every second, everyone's place moves each second; a message a second to each of them was a
 * quarter of the server's time, and a change of 1 in 4,000 tells its reader nothing.
 */
export function placeGist(position: number): number {
  return position <= 20 ? position : 20 + Math.round(Math.log(position / 20) * 20);
}

/** A user as the API answers it. */
function view(user: SpinUser) {
  return { ...user, seeking: [...user.seeking] };
}

/** The rate-limit key of a user: a digest of its token (the user is not known yet at onRequest). */
/** The request's bearer token ('' without one). */
function bearer(request: FastifyRequest): string {
  const header = request.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice(7).trim() : '';
}

function userKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  return header?.startsWith('Bearer ') ? tokenDigest(header.slice(7).trim()).slice(0, 32) : undefined;
}

/**
 * One user's stream: first the events after `Last-Event-ID` from the store (so a match made while
 * the connection was down arrives once after it), then live ones as the feed brings them, a status
 * when the queue changes (at most once a second), and a comment every 15 s.
 */
async function stream(
  request: FastifyRequest,
  reply: FastifyReply,
  context: { bulwark: Bulwark; spin: SpinService; user: SpinUser; matchToEvent: Histogram },
): Promise<void> {
  const { bulwark, spin, user, matchToEvent } = context;
  const raw = reply.raw;
  reply.hijack();
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  let sent = Number(request.headers['last-event-id'] ?? 0);
  const send = (event: FeedEvent) => {
    if (event.id <= sent) return; // replayed and live can overlap: each goes once
    sent = event.id;
    raw.write(
      `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify({ ...event.data, at: event.at })}\n\n`,
    );
  };
  // A status carries the feed's position as its id: a client that reconnects with it as its
  // Last-Event-ID is sent every event of its own written since (a match made while it was away),
  // even when the first connection saw nothing else.
  // After the first, a status goes out only when it says something new for this user (place,
  // waiting or not, the reason, the median moved by a tenth): with thousands connected, the queue
  // changing every second must not mean thousands of identical messages a second.
  let said = '';
  const sendStatus = (status: QueueStatus | undefined, update = false) => {
    if (status === undefined || raw.destroyed) return;
    const gist = status.waiting
      ? `${placeGist(status.position)}|${status.estimate.reason}|${Math.round(Math.log1p(status.estimate.p50Ms ?? 0) * 10)}`
      : 'not waiting';
    if (update && gist === said) return;
    said = gist;
    sent = Math.max(sent, spin.feed.position);
    raw.write(`id: ${sent}\nevent: status\ndata: ${JSON.stringify(status)}\n\n`);
  };
  const pending: FeedEvent[] = [];
  let replaying = true;
  const stopUser = spin.onUser(user.id, (event) => {
    if (replaying) pending.push(event);
    else {
      send(event);
      if (event.type === 'match') matchToEvent.observe(Math.max(0, Date.now() - event.at) / 1000);
    }
  });
  const stopQueue = spin.onQueueChange(() => sendStatus(spin.statusNow(user), true));
  const heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), HEARTBEAT_MS);
  heartbeat.unref();
  raw.on('close', () => {
    stopUser();
    stopQueue();
    clearInterval(heartbeat);
  });
  raw.write(`retry: 2000\n\n`);
  // A resume, even from 0 (the first status of a stream opened on an empty feed carries id 0), is
  // sent every event of the user's since; only a new stream (no Last-Event-ID) is not.
  if (request.headers['last-event-id'] !== undefined) {
    try {
      for (const event of await spin.store.events(sent, REPLAY_LIMIT, user.id)) send(event);
    } catch (error) {
      bulwark.logger.warn({ err: error }, 'spin: replaying a stream failed');
    }
  }
  replaying = false;
  for (const event of pending.splice(0)) send(event);
  sendStatus(await spin.status(user).catch(() => undefined));
}

// Spin's test endpoints under /api/test, for load tests and demos: seed users, reset the queue,
// simulate arrivals on this instance. Guarded (test-access.ts): the flag spin.test-endpoints, then
// keys configured, then the client's address, then the key; limited per key (policy spin-test);
// every request admitted is written to Bulwark's audit log, refusals are tallied.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import {
  AUDIT_REFUSED_TARGET,
  bulwarkError,
  clientNetwork,
  type Bulwark,
  type RateLimitPolicy,
  type ToolFlag,
} from 'bulwark';
import { lazySchemas } from 'bulwark/fastify';
import { groupKey } from './domain/groups.js';
import { seededRandom } from './domain/simulate.js';
import { GENDERS } from './domain/types.js';
import { spinError } from './errors.js';
import type { SpinService } from './service.js';
import { TestAccess, type Decision, type Refusal } from './test-access.js';
import { apportion, mixOf, Simulation, type MixInput } from './test-simulation.js';
import type { NewUser } from './store.js';

/** The kill switch of the test endpoints (on by default): off, every one answers 403 SPIN_TEST_DISABLED. */
export const TEST_ENDPOINTS_FLAG: ToolFlag = {
  key: 'spin.test-endpoints',
  description: "Spin's test endpoints (/api/test/*: seed, reset, simulate); off: 403 SPIN_TEST_DISABLED",
};

/** The rate limit of each key (a request without a valid key counts against its address). */
export const TEST_RATE_LIMIT_POLICY: RateLimitPolicy = { name: 'spin-test', limit: 30, windowMs: 60_000 };

/** Users one seed request may create, and with their tokens. */
const MAX_SEED = 10_000;
const MAX_TOKENS = 1_000;

const Gender = Type.Enum([...GENDERS]);
const Mix = Type.Union([
  Type.Enum(['balanced', 'imbalanced']),
  Type.Array(
    Type.Object(
      {
        gender: Gender,
        seeking: Type.Array(Gender, { minItems: 1, maxItems: 3, uniqueItems: true }),
        share: Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000 }),
      },
      { additionalProperties: false },
    ),
    { minItems: 1, maxItems: 21 },
  ),
]);
const Seed = Type.Integer({ minimum: 0, maximum: 4_294_967_295 });
const Progress = Type.Object({
  state: Type.Enum(['idle', 'running', 'completed', 'stopped', 'failed']),
  startedAt: Type.Optional(Type.Integer()),
  endsAt: Type.Optional(Type.Integer()),
  endedAt: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  perMinute: Type.Optional(Type.Number()),
  durationMs: Type.Optional(Type.Integer()),
  seed: Type.Optional(Type.Integer()),
  arrived: Type.Optional(Type.Integer()),
  matched: Type.Optional(Type.Integer()),
  left: Type.Optional(Type.Integer()),
  waiting: Type.Optional(Type.Integer()),
  failed: Type.Optional(Type.Integer()),
  error: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});
const security = [{ spinTestKey: [] }];

const REFUSALS: Record<Refusal, () => Error> = {
  'turned-off': () =>
    spinError('SPIN_TEST_DISABLED', `The test endpoints are turned off (flag ${TEST_ENDPOINTS_FLAG.key})`),
  disabled: () =>
    spinError(
      'SPIN_TEST_DISABLED',
      'The test endpoints are disabled: no key is configured (SPIN_TEST_API_KEYS)',
    ),
  'no-keys': () =>
    spinError(
      'SPIN_TEST_UNAUTHORIZED',
      'No test key is configured: set SPIN_TEST_API_KEYS=<name>:<key> (24 characters or more) and restart',
    ),
  address: () => spinError('SPIN_TEST_ADDRESS_FORBIDDEN', 'Your address is not on SPIN_TEST_ALLOW_IPS'),
  'missing-key': () =>
    spinError('SPIN_TEST_UNAUTHORIZED', 'Send a test key: Authorization: Bearer <key> or X-Test-Key: <key>'),
  'wrong-key': () => spinError('SPIN_TEST_UNAUTHORIZED', 'This test key is not valid'),
};

/** The key a request presents: `X-Test-Key`, else `Authorization: Bearer`. */
function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers['x-test-key'];
  if (typeof header === 'string' && header !== '') return header.trim();
  const authorization = request.headers.authorization;
  return authorization?.startsWith('Bearer ') ? authorization.slice(7).trim() : undefined;
}

/**
 * The test endpoints, a Fastify plugin: `POST /api/test/seed`, `POST /api/test/reset`,
 * `POST|GET|DELETE /api/test/simulate`. Reads SPIN_TEST_API_KEYS and SPIN_TEST_ALLOW_IPS from `env`
 * (default `process.env`) once; a bad value fails the registration with BWK_ERR_SETTINGS_INVALID
 * naming the variable. A running simulation stops when the app closes.
 */
export async function testEndpoints(
  app: FastifyInstance,
  { bulwark, spin, env = process.env }: { bulwark: Bulwark; spin: SpinService; env?: NodeJS.ProcessEnv },
): Promise<void> {
  const access = TestAccess.fromEnv(env);
  const production = bulwark.settings.nodeEnv === 'production';
  lazySchemas(app);
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();

  // Decided once per request: first by the rate limiter (which runs before this scope's hooks and
  // counts a request by its key's name, or by its address without a valid key), then by the guard.
  const decisions = new WeakMap<FastifyRequest, Decision>();
  const decide = (request: FastifyRequest): Decision => {
    let decision = decisions.get(request);
    if (decision === undefined) {
      decision = bulwark.flags.isEnabled(TEST_ENDPOINTS_FLAG.key, {}, true)
        ? access.decide(request.ip, presentedKey(request), production)
        : { refusal: 'turned-off' };
      decisions.set(request, decision);
    }
    return decision;
  };
  const admitted = new WeakMap<FastifyRequest, string>();
  /** What a route adds to its audit row (counts, the simulation's settings). */
  const notes = new WeakMap<FastifyRequest, Record<string, unknown>>();

  app.addHook('onRequest', async (request) => {
    const decision = decide(request);
    if ('refusal' in decision) throw REFUSALS[decision.refusal]();
    admitted.set(request, decision.name);
  });

  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    const route = `${request.method} ${request.routeOptions.url ?? 'unmatched'}`;
    const name = admitted.get(request);
    if (name === undefined) {
      // Refused (by the guard or the rate limiter): counted per client network and reason, one
      // summary row a minute; never a row per request, never the key.
      const decision = decisions.get(request);
      const known = decision !== undefined && 'name' in decision ? decision.name : undefined;
      const reason =
        decision !== undefined && 'refusal' in decision
          ? decision.refusal
          : reply.statusCode === 429
            ? 'rate-limited'
            : `status-${reply.statusCode}`;
      const client = clientNetwork(request.ip);
      bulwark.store.audit.tally({
        actor: known === undefined ? 'anonymous' : `test-key:${known}`,
        action: 'spin.test.refused',
        target: AUDIT_REFUSED_TARGET,
        key: `spin.test|${client}|${reason}|${known ?? ''}`,
        detail: { client, reason, status: reply.statusCode },
        sample: route,
      });
      return;
    }
    await bulwark.store.audit
      .append({
        actor: `test-key:${name}`,
        action: `spin.test.${(request.routeOptions.url ?? '').split('/').at(-1) ?? ''}`,
        target: 'spin:test',
        detail: {
          route,
          status: reply.statusCode,
          ip: request.ip,
          requestId: request.id,
          ...notes.get(request),
        },
      })
      .catch((error: unknown) => request.log.error({ err: error }, 'spin: test endpoint audit write failed'));
  });

  const config = {
    rateLimit: {
      by: 'user' as const,
      policy: TEST_RATE_LIMIT_POLICY.name,
      user: (request: FastifyRequest) => {
        const decision = decide(request);
        return 'name' in decision ? `test-key:${decision.name}` : undefined;
      },
    },
  };

  typed.post(
    '/api/test/seed',
    {
      schema: {
        tags: ['spin-test'],
        summary: `Create users of a mix (up to ${MAX_SEED}), joining the queue unless join is false; tokens only when asked (up to ${MAX_TOKENS})`,
        security,
        body: Type.Object(
          {
            users: Type.Integer({ minimum: 1, maximum: MAX_SEED }),
            mix: Type.Optional(Mix),
            join: Type.Optional(Type.Boolean()),
            tokens: Type.Optional(Type.Boolean()),
            seed: Type.Optional(Seed),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            created: Type.Integer(),
            joined: Type.Integer(),
            groups: Type.Record(Type.String(), Type.Integer()),
            users: Type.Optional(
              Type.Array(Type.Object({ id: Type.String(), group: Type.String(), token: Type.String() })),
            ),
          }),
        },
      },
      config,
    },
    async (request, reply) => {
      const { users: total, mix = 'imbalanced', join = true, tokens = false } = request.body;
      if (tokens && total > MAX_TOKENS)
        throw bulwarkError(
          'BWK_ERR_HTTP_VALIDATION',
          { part: 'body', detail: `body.users must be at most ${MAX_TOKENS} with tokens` },
          { details: [{ field: 'body.users', message: `must be at most ${MAX_TOKENS} with tokens` }] },
        );
      const groups = apportion(mixOf(mix as MixInput), total);
      const inputs: NewUser[] = [];
      for (const { group, count } of groups.values())
        for (let i = 0; i < count; i += 1)
          inputs.push({
            displayName: `test ${inputs.length + 1}`,
            gender: group.gender,
            seeking: group.seeking,
          });
      // Shuffled (seeded), so that the queue's order of equal join times is not group by group.
      shuffle(inputs, seededRandom(request.body.seed ?? Date.now()));
      const created = await spin.store.createUsers(inputs, { join });
      notes.set(request, { users: total, mix: typeof mix === 'string' ? mix : 'custom', join, tokens });
      return reply.code(201).send({
        created: created.length,
        joined: join ? created.length : 0,
        groups: Object.fromEntries(
          [...groups].filter(([, g]) => g.count > 0).map(([key, g]) => [key, g.count]),
        ),
        ...(tokens
          ? { users: created.map(({ user, token }) => ({ id: user.id, group: groupKey(user), token })) }
          : {}),
      });
    },
  );

  typed.post(
    '/api/test/reset',
    {
      schema: {
        tags: ['spin-test'],
        summary: 'Empty the queue and the event feed; with users: true, the users and matches too',
        security,
        body: Type.Object({ users: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            waiting: Type.Integer(),
            events: Type.Integer(),
            users: Type.Integer(),
            matches: Type.Integer(),
          }),
        },
      },
      config,
      // No body at all (curl -X POST without -d) is an empty one.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) => {
      const users = request.body.users === true;
      const deleted = await spin.store.reset({ users });
      // Tokens of deleted users must stop working now, not when their cache entry expires (routes.ts).
      if (users) await bulwark.cache.namespace('spin-users').clear();
      notes.set(request, { users, deleted });
      return deleted;
    },
  );

  let simulation: Simulation | undefined;
  app.addHook('preClose', async () => simulation?.stop());
  const progress = () =>
    simulation === undefined
      ? { state: 'idle' as const }
      : {
          ...simulation.progress,
          perMinute: simulation.spec.perMinute,
          durationMs: simulation.spec.durationMs,
          seed: simulation.spec.seed,
        };

  typed.post(
    '/api/test/simulate',
    {
      schema: {
        tags: ['spin-test'],
        summary:
          'Start simulated arrivals on this instance (at most one at a time, up to 1 h, up to 10,000 a minute)',
        security,
        body: Type.Object(
          {
            perMinute: Type.Number({ exclusiveMinimum: 0, maximum: 10_000 }),
            durationMs: Type.Integer({ minimum: 1000, maximum: 3_600_000 }),
            mix: Type.Optional(Mix),
            seed: Type.Optional(Seed),
            patience: Type.Optional(
              Type.Object(
                {
                  stayShare: Type.Number({ minimum: 0, maximum: 1 }),
                  meanMs: Type.Integer({ minimum: 1000, maximum: 3_600_000 }),
                },
                { additionalProperties: false },
              ),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 202: Progress },
      },
      config,
    },
    async (request, reply) => {
      if (simulation?.running === true)
        throw spinError(
          'SPIN_TEST_SIMULATION_RUNNING',
          'A simulation is running on this instance: DELETE /api/test/simulate stops it',
        );
      const { perMinute, durationMs, mix = 'balanced', seed = Date.now() >>> 0, patience } = request.body;
      simulation = new Simulation(
        { perMinute, durationMs, mix: mixOf(mix as MixInput), seed, patience },
        { store: spin.store, feed: spin.feed, logger: bulwark.logger },
      );
      notes.set(request, { perMinute, durationMs, mix: typeof mix === 'string' ? mix : 'custom', seed });
      return reply.code(202).send(progress());
    },
  );

  typed.get(
    '/api/test/simulate',
    {
      schema: {
        tags: ['spin-test'],
        summary: "This instance's simulation: running or how it ended (idle: none since start)",
        security,
        response: { 200: Progress },
      },
      config,
    },
    async () => progress(),
  );

  typed.delete(
    '/api/test/simulate',
    {
      schema: {
        tags: ['spin-test'],
        summary: "Stop this instance's simulation (answers how far it got)",
        security,
        response: { 200: Progress },
      },
      config,
    },
    async () => {
      await simulation?.stop();
      return progress();
    },
  );
}

/** Fisher–Yates, in place. */
function shuffle<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}

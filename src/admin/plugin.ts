import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { bulwarkError } from '../errors/index.js';
import { AUDIT_REFUSED_TARGET } from '../store/audit-retention.js';
import type { Bulwark } from '../runtime/create.js';
import { lazySchemas } from '../http/lazy-schemas.js';
import { registerAccess } from './access.js';
import { adminActor } from './actor.js';
import { registerFlagRoutes } from './flags.js';
import { registerGuardedRolloutRoutes } from './guarded-rollout.js';
import { registerQueueRoutes } from './queues.js';
import { registerSupervisorRoutes } from './supervisor.js';
import { registerErrorRoutes } from './errors.js';
import { registerAlertRoutes } from './alerts.js';
import { registerMetricsHistoryRoutes } from './metrics.js';
import { registerDegradationRoutes } from './degradation.js';
import { registerInstanceRoutes } from './instances.js';
import { registerEventStream } from './events.js';
import { registerOverviewRoutes } from './overview.js';
import { registerConfigRoutes } from './config.js';
import { registerAnnotationRoutes } from './annotations.js';
import { registerOutboundRoutes } from './outbound.js';
import { registerLeakRoutes } from './leaks.js';

const Dependency = Type.Object({
  name: Type.String(),
  mode: Type.Enum(['primary', 'fallback']),
  reason: Type.String(),
  forced: Type.Boolean(),
  switches: Type.Integer(),
  lastSwitchAt: Type.Union([Type.Integer(), Type.Null()], {
    description: 'ms since the epoch; null before the first switch',
  }),
  requiredStreakMs: Type.Integer(),
  backlog: Type.Array(
    Type.Object({
      name: Type.String({ description: 'what waits: `cache journal (default)`, `queue spool`' }),
      pending: Type.Union([Type.Integer(), Type.Null()], {
        description: 'records accepted on the fallback, not yet on the primary; null when unreadable',
      }),
      error: Type.Optional(Type.String({ description: 'why it could not be read (an error code)' })),
    }),
    { description: 'Work kept on the fallback side that goes to the primary once it is back' },
  ),
});
const security = [{ adminKey: [] }];

/**
 * The admin API under `/admin/api/`: every request needs a key (`Authorization: Bearer <key>`, a
 * stored key or `BULWARK_ADMIN_KEY`) or a console session; a viewer may only read; every request
 * admitted is recorded in the store's audit log with its actor, and refusals are tallied
 * (`registerAccess` in access.ts has the rules).
 */
export async function registerAdminApi(app: FastifyInstance, bulwark: Bulwark): Promise<void> {
  await app.register(
    async (admin) => {
      // ~40 schema'd routes: compiled when first used, not at start-up.
      lazySchemas(admin);
      const typed = admin.withTypeProvider<TypeBoxTypeProvider>();
      await registerAccess(admin, bulwark);

      typed.get(
        '/dependencies',
        {
          schema: {
            tags: ['admin'],
            summary: 'Degradable dependencies and the side each is served from',
            security,
            response: { 200: Type.Array(Dependency) },
          },
        },
        async () => Promise.all(Object.values(bulwark.dependencies).map(describe)),
      );

      typed.put(
        '/dependencies/:name/forced',
        {
          schema: {
            tags: ['admin'],
            summary: 'Kill switch: force a dependency onto its embedded fallback, or release it',
            security,
            params: Type.Object({ name: Type.String({ maxLength: 64 }) }),
            body: Type.Object(
              { forced: Type.Boolean(), reason: Type.Optional(Type.String({ maxLength: 500 })) },
              { additionalProperties: false },
            ),
            response: { 200: Dependency },
          },
        },
        async (request) => {
          const failover = bulwark.dependencies[request.params.name];
          if (failover === undefined) {
            throw bulwarkError('BWK_ERR_ADMIN_UNKNOWN_DEPENDENCY', {
              name: JSON.stringify(request.params.name),
            });
          }
          const before = failover.forced;
          failover.setForced(request.body.forced);
          await bulwark.store.audit.append({
            actor: adminActor(request),
            action: request.body.forced ? 'dependency.force' : 'dependency.release',
            target: `dependency:${failover.name}`,
            detail: { before, after: request.body.forced, reason: request.body.reason ?? null },
          });
          bulwark.logger.warn(
            { dependency: failover.name, forced: request.body.forced, reason: request.body.reason },
            'kill switch changed by an admin',
          );
          return describe(failover);
        },
      );

      typed.get(
        '/ratelimit/offenders',
        {
          schema: {
            tags: ['admin'],
            summary: 'Keys refused most often by the rate limiter (bounded list; API keys are hashed)',
            security,
            querystring: Type.Object({
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
              policy: Type.Optional(Type.String({ maxLength: 64 })),
            }),
            response: {
              200: Type.Array(
                Type.Object({
                  policy: Type.String(),
                  key: Type.String(),
                  count: Type.Integer(),
                  overcount: Type.Integer(),
                }),
              ),
            },
          },
        },
        async (request) => bulwark.rateLimiter.topOffenders(request.query.limit ?? 20, request.query.policy),
      );

      registerQueueRoutes(admin, bulwark);
      registerSupervisorRoutes(admin, bulwark);
      registerErrorRoutes(admin, bulwark.errors);
      registerAlertRoutes(admin, bulwark.alerts, bulwark.store);
      if (bulwark.metrics.history !== undefined) registerMetricsHistoryRoutes(admin, bulwark.metrics.history);
      registerFlagRoutes(admin, bulwark);
      registerGuardedRolloutRoutes(admin, bulwark);
      registerInstanceRoutes(admin, bulwark);
      registerDegradationRoutes(admin, bulwark);
      registerEventStream(admin, bulwark);
      registerOverviewRoutes(admin, bulwark);
      if (bulwark.config !== undefined) registerConfigRoutes(admin, bulwark);
      registerAnnotationRoutes(admin, bulwark);
      registerOutboundRoutes(admin, bulwark);
      if (bulwark.leaks !== undefined) registerLeakRoutes(admin, bulwark, bulwark.leaks);

      typed.get(
        '/audit',
        {
          schema: {
            tags: ['admin'],
            summary: 'The audit log, newest first',
            security,
            description:
              'Filters: `target` and `actor` exact, `action` a prefix (`flag.` for every flag change). Pages: `before` an id (the last row of the previous page). Refused requests (no or a wrong key) are summary rows (action admin.refused, one per client network, reason and minute, with a count); `refused` chooses whether to leave them out (default), include them, or list only them.',
            querystring: Type.Object({
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
              target: Type.Optional(Type.String({ maxLength: 200 })),
              actor: Type.Optional(Type.String({ maxLength: 200 })),
              action: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
              before: Type.Optional(Type.Integer({ minimum: 1 })),
              refused: Type.Optional(Type.Enum(['exclude', 'include', 'only'], { default: 'exclude' })),
            }),
          },
        },
        async (request) => {
          const { limit = 50, target, actor, action, before, refused: which = 'exclude' } = request.query;
          return bulwark.store.audit.list({
            limit,
            ...(actor === undefined ? {} : { actor }),
            ...(action === undefined ? {} : { actionPrefix: action }),
            ...(before === undefined ? {} : { beforeId: before }),
            ...(which === 'only' ? { target: AUDIT_REFUSED_TARGET } : target === undefined ? {} : { target }),
            ...(which === 'exclude' ? { excludeTarget: AUDIT_REFUSED_TARGET } : {}),
          });
        },
      );
    },
    { prefix: '/admin/api' },
  );
}

async function describe(failover: Bulwark['dependencies'][string]) {
  return {
    name: failover.name,
    mode: failover.mode,
    reason: failover.reason,
    forced: failover.forced,
    switches: failover.switches,
    lastSwitchAt: failover.lastSwitchAt ?? null,
    requiredStreakMs: failover.requiredStreakMs,
    backlog: await failover.backlog(),
  };
}

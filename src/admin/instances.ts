import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { InstanceRegistry } from '../instances/registry.js';
import type { Bulwark } from '../runtime/create.js';

const security = [{ adminKey: [] }];

const Instance = Type.Object({
  instanceId: Type.String(),
  serviceId: Type.String(),
  host: Type.String(),
  pid: Type.Integer(),
  version: Type.String(),
  startedAt: Type.Integer({ description: 'ms since the epoch' }),
  lastSeen: Type.Integer({ description: 'ms since the epoch: its last heartbeat (every 10 s)' }),
  stoppedAt: Type.Optional(Type.Integer({ description: 'ms since the epoch, when it closed cleanly' })),
  alive: Type.Boolean({ description: 'seen within the last 30 s and not stopped' }),
  dependencies: Type.Record(
    Type.String(),
    Type.Object({ mode: Type.Enum(['primary', 'fallback']), forced: Type.Boolean() }),
  ),
  supervisor: Type.Optional(Type.Object({ slot: Type.Integer(), generation: Type.Integer() })),
});

/**
 * `GET /instances`: every instance in the registry (`bulwark_instances`), newest first, at most 200;
 * stopped ones only with `?include=stopped`. Register inside the authenticated, audited admin scope:
 * it checks no key itself. A store failure answers 503 `BWK_ERR_STORE_UNAVAILABLE`.
 */
export function registerInstanceRoutes(admin: FastifyInstance, bulwark: Bulwark): void {
  admin.withTypeProvider<TypeBoxTypeProvider>().get(
    '/instances',
    {
      schema: {
        tags: ['admin'],
        summary: 'Every Bulwark instance sharing this store: host, pid, version, dependency modes, last seen',
        security,
        querystring: Type.Object({ include: Type.Optional(Type.Enum(['stopped'])) }),
        response: { 200: Type.Object({ instances: Type.Array(Instance), generatedAt: Type.Integer() }) },
      },
    },
    async (request) => {
      const registry = bulwark.parts.get('instances') as InstanceRegistry | undefined;
      const instances =
        registry === undefined
          ? []
          : await registry.list({ includeStopped: request.query.include === 'stopped' });
      return { instances, generatedAt: Date.now() };
    },
  );
}

import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { bulwarkError } from '../errors/index.js';
import type { FlagActor, FlagProvenance, FlagService } from '../flags/service.js';
import type { FlagDefinition, FlagValue } from '../flags/types.js';
import { FLAG_KEY_PATTERN } from '../flags/validate.js';
import type { Bulwark } from '../runtime/create.js';
import type { RouteAccess } from './access.js';
import { adminActor } from './actor.js';

/** A flag as the admin API and `bulwark flags` show it: the definition and its stored version. */
export type VersionedFlag = FlagDefinition & {
  /** The compare-and-set token of the stored definition (`ifVersion`); 0 for a tool flag never written. */
  version: number;
  /** When the stored definition was last written (ms since the epoch); null when never stored. */
  updatedAt: number | null;
};

/** Every flag this instance evaluates, with where the definitions came from. */
export interface FlagOverview {
  provenance: FlagProvenance;
  flags: VersionedFlag[];
}

/** Which flags a list shows: a search in key and description, the state, a page after a key. */
export interface FlagQuery {
  q?: string | undefined;
  state?: 'on' | 'killed' | undefined;
  type?: string | undefined;
  /** Only keys after this one (the `next` of the previous page). */
  after?: string | undefined;
  limit?: number | undefined;
}

/**
 * The flags held in memory (what this instance evaluates) that match `query`, sorted by key, each
 * with its version and last write as stored now (one store query for the page), the number that
 * match, and the key to continue after (null on the last page). Rejects when the store cannot be read.
 */
export async function flagOverview(
  flags: FlagService,
  query: FlagQuery = {},
): Promise<FlagOverview & { total: number; next: string | null }> {
  const provenance = flags.provenance;
  const needle = query.q?.trim().toLowerCase() ?? '';
  const matching = flags
    .list()
    .filter(
      (flag) =>
        (needle === '' ||
          flag.key.toLowerCase().includes(needle) ||
          (flag.description?.toLowerCase().includes(needle) ?? false)) &&
        (query.state === undefined || flag.enabled === (query.state === 'on')) &&
        (query.type === undefined || flag.type === query.type),
    );
  const start = query.after === undefined ? 0 : matching.findIndex((flag) => flag.key > query.after!);
  const page = start === -1 ? [] : matching.slice(start, start + (query.limit ?? matching.length));
  const stored = await flags.storedStates(page.map((flag) => flag.key));
  const last = page.at(-1);
  return {
    provenance,
    flags: page.map((flag) => ({
      ...flag,
      version: stored.get(flag.key)?.version ?? 0,
      updatedAt: stored.get(flag.key)?.updatedAt ?? null,
    })),
    total: matching.length,
    next: last !== undefined && last !== matching.at(-1) ? last.key : null,
  };
}

/** The definition of `key` in memory; throws `BWK_ERR_FLAG_NOT_FOUND` (404) when there is none. */
export function requireFlag(flags: FlagService, key: string): FlagDefinition {
  const flag = flags.get(key);
  if (flag === undefined) throw bulwarkError('BWK_ERR_FLAG_NOT_FOUND', { key: shown(key) });
  return flag;
}

/** A key for a message: as is when it is a valid flag key, else quoted (it came from a caller). */
function shown(key: string): string {
  return FLAG_KEY_PATTERN.test(key) ? key : JSON.stringify(key);
}

/** Who changes a flag and why, without a `reason` property when none was given. */
export function flagActor(actor: string, reason: string | undefined): FlagActor {
  return reason === undefined ? { actor } : { actor, reason };
}

export const security = [{ adminKey: [] }];
// Unknown properties are kept (not stripped) so that a field added to definitions still shows.
export const open = { additionalProperties: true };
const Rollout = Type.Object(
  { variant: Type.String(), otherwise: Type.String(), percentage: Type.Number({ minimum: 0, maximum: 100 }) },
  open,
);
const Condition = Type.Object(
  {
    attribute: Type.String(),
    op: Type.String({
      description: 'eq, neq, in, notIn, contains, startsWith, endsWith, gt, gte, lt, lte, exists',
    }),
    values: Type.Optional(Type.Array(Type.Union([Type.String(), Type.Number(), Type.Boolean()]))),
  },
  open,
);
const flagProperties = {
  key: Type.String(),
  type: Type.Enum(['boolean', 'string', 'number', 'json']),
  description: Type.Optional(Type.String()),
  variants: Type.Record(Type.String(), Type.Unknown()),
  defaultVariant: Type.String(),
  enabled: Type.Boolean({ description: 'The kill switch: false serves offVariant to everyone' }),
  offVariant: Type.Optional(Type.String()),
  rules: Type.Optional(
    Type.Array(
      Type.Object(
        {
          name: Type.Optional(Type.String()),
          conditions: Type.Array(Condition),
          variant: Type.Optional(Type.String()),
          rollout: Type.Optional(Rollout),
        },
        open,
      ),
    ),
  ),
  rollout: Type.Optional(Rollout),
};
const Flag = Type.Object(flagProperties, { ...open, description: 'A flag definition (docs/flags.md)' });
const Versioned = Type.Object({ flag: Flag, version: Type.Integer() });
const Provenance = Type.Object({
  source: Type.Enum(['store', 'snapshot', 'bootstrap', 'defaults']),
  loadedAt: Type.Integer({ description: 'ms since the epoch' }),
  revision: Type.Integer(),
  flags: Type.Integer(),
});
export const KeyParams = Type.Object({ key: Type.String({ maxLength: 200 }) });
export const Reason = Type.Optional(Type.String({ maxLength: 500, description: 'why, for the audit log' }));
export const ReasonBody = Type.Object({ reason: Reason }, { additionalProperties: false });
const AuditEntry = Type.Object({
  id: Type.Integer(),
  at: Type.Integer({ description: 'ms since the epoch' }),
  actor: Type.String(),
  action: Type.String(),
  target: Type.String(),
  detail: Type.Unknown({ description: '{ before, after, reason, revision }' }),
});
const Details = Type.Object(
  {
    key: Type.String(),
    value: Type.Unknown(),
    variant: Type.Optional(Type.String()),
    reason: Type.String({ description: 'STATIC, TARGETING_MATCH, SPLIT, DISABLED, DEFAULT or ERROR' }),
    rule: Type.Optional(Type.String()),
    errorCode: Type.Optional(Type.String()),
    errorMessage: Type.Optional(Type.String()),
  },
  open,
);

/**
 * The flag routes of the admin API (`/flags...`), over `bulwark.flags`, acting as the caller (`adminActor`).
 * Register them inside the authenticated, audited admin scope: they check no key themselves. The
 * flag service validates definitions and audits every change; its errors reach the error handler
 * (400 `BWK_ERR_FLAG_INVALID` naming each bad field, 404 `BWK_ERR_FLAG_NOT_FOUND`, 409
 * `BWK_ERR_STORE_CONFLICT` for a stale `ifVersion`).
 */
export function registerFlagRoutes(admin: FastifyInstance, bulwark: Bulwark): void {
  const typed = admin.withTypeProvider<TypeBoxTypeProvider>();
  const flags = bulwark.flags;
  const changed = (key: string, action: string, reason: string | undefined) =>
    bulwark.logger.warn({ flag: key, action, reason }, 'flag changed by an admin');

  typed.get(
    '/flags',
    {
      schema: {
        tags: ['admin'],
        summary:
          'The flags this instance evaluates, a page at a time, with stored version, last write and provenance',
        description:
          '`q` searches keys and descriptions; `state` (on, killed) and `type` filter; `after` continues after a key (the `next` of the previous page, null on the last); `total` counts every match.',
        security,
        querystring: Type.Object({
          q: Type.Optional(Type.String({ maxLength: 200 })),
          state: Type.Optional(Type.Enum(['on', 'killed'])),
          type: Type.Optional(Type.Enum(['boolean', 'string', 'number', 'json'])),
          after: Type.Optional(Type.String({ maxLength: 500 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
        }),
        response: {
          200: Type.Object({
            provenance: Provenance,
            flags: Type.Array(
              Type.Object(
                {
                  ...flagProperties,
                  version: Type.Integer(),
                  updatedAt: Type.Union([Type.Integer(), Type.Null()]),
                },
                open,
              ),
            ),
            total: Type.Integer(),
            next: Type.Union([Type.String(), Type.Null()]),
          }),
        },
      },
    },
    async (request) => flagOverview(flags, { ...request.query, limit: request.query.limit ?? 50 }),
  );

  typed.get(
    '/flags/:key',
    {
      schema: {
        tags: ['admin'],
        summary: 'One flag and its version (the `ifVersion` for a compare-and-set)',
        security,
        params: KeyParams,
        response: { 200: Versioned },
      },
    },
    async (request) => {
      const flag = requireFlag(flags, request.params.key);
      return { flag, version: await flags.versionOf(flag.key) };
    },
  );

  typed.put(
    '/flags/:key',
    {
      schema: {
        tags: ['admin'],
        summary: 'Create or replace a flag; `ifVersion` makes it a compare-and-set (409 when stale)',
        security,
        params: KeyParams,
        body: Type.Object(
          {
            flag: Type.Object(
              {},
              {
                additionalProperties: true,
                description:
                  'The definition (the shape of the `flag` answered); checked by the flag service, ' +
                  'which answers BWK_ERR_FLAG_INVALID naming each bad field. Its key must be the key in the path.',
              },
            ),
            reason: Reason,
            ifVersion: Type.Optional(
              Type.Integer({ minimum: 0, description: 'the version read; 0 = only if absent' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Versioned },
      },
    },
    async (request) => {
      const { key } = request.params;
      const { flag: input, reason, ifVersion } = request.body;
      const given = (input as { key?: unknown }).key;
      if (given !== key) {
        const message = `must be ${JSON.stringify(key)}, the key in the path (got ${given === undefined ? 'none' : JSON.stringify(given)})`;
        throw bulwarkError(
          'BWK_ERR_FLAG_INVALID',
          { key: shown(key), detail: `key ${message}` },
          { details: [{ field: 'key', message }] },
        );
      }
      const flag = await flags.set(
        input,
        flagActor(adminActor(request), reason),
        ifVersion === undefined ? {} : { ifVersion },
      );
      changed(key, 'flag.set', reason);
      return { flag, version: await flags.versionOf(key) };
    },
  );

  for (const action of ['kill', 'revive'] as const) {
    typed.post(
      `/flags/:key/${action}`,
      {
        schema: {
          tags: ['admin'],
          summary:
            action === 'kill'
              ? 'Kill switch: serve the off variant to everyone, on every instance'
              : 'Release the kill switch',
          security,
          params: KeyParams,
          body: ReasonBody,
          response: { 200: Type.Object({ flag: Flag }) },
        },
        // A POST without a body (`curl -X POST`) carries no reason.
        preValidation: async (request) => {
          request.body ??= {};
        },
      },
      async (request) => {
        const { key } = request.params;
        const who = flagActor(adminActor(request), request.body.reason);
        const flag = action === 'kill' ? await flags.kill(key, who) : await flags.revive(key, who);
        changed(key, `flag.${action}`, request.body.reason);
        return { flag };
      },
    );
  }

  typed.put(
    '/flags/:key/rollout',
    {
      schema: {
        tags: ['admin'],
        summary: 'Set the top-level percentage rollout (variants default to the current ones, or on/off)',
        security,
        params: KeyParams,
        body: Type.Object(
          {
            percentage: Type.Number({ minimum: 0, maximum: 100 }),
            variant: Type.Optional(Type.String({ maxLength: 200 })),
            otherwise: Type.Optional(Type.String({ maxLength: 200 })),
            reason: Reason,
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ flag: Flag }) },
      },
    },
    async (request) => {
      const { key } = request.params;
      const { percentage, variant, otherwise, reason } = request.body;
      const flag = await flags.rollout(key, percentage, flagActor(adminActor(request), reason), {
        ...(variant === undefined ? {} : { variant }),
        ...(otherwise === undefined ? {} : { otherwise }),
      });
      changed(key, 'flag.rollout', reason);
      return { flag };
    },
  );

  typed.delete(
    '/flags/:key',
    {
      schema: {
        tags: ['admin'],
        summary: 'Delete a stored flag (evaluations then answer the caller’s default); 204',
        security,
        params: KeyParams,
        querystring: Type.Object({ reason: Reason }),
        body: ReasonBody,
        response: { 204: Type.Null() },
      },
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request, reply) => {
      const { key } = request.params;
      const reason = request.body.reason ?? request.query.reason;
      if (!(await flags.remove(key, flagActor(adminActor(request), reason))))
        throw bulwarkError('BWK_ERR_FLAG_NOT_FOUND', { key: shown(key) });
      changed(key, 'flag.delete', reason);
      return reply.code(204).send(null);
    },
  );

  typed.get(
    '/flags/:key/history',
    {
      schema: {
        tags: ['admin'],
        summary: 'The audit records of one flag (also after it was deleted), newest first',
        security,
        params: KeyParams,
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
        }),
        response: { 200: Type.Array(AuditEntry) },
      },
    },
    async (request) => flags.history(request.params.key, request.query.limit ?? 50),
  );

  typed.post(
    '/flags/:key/evaluate',
    {
      // A POST only to carry the context: it changes nothing, so a viewer may evaluate too.
      config: { adminAccess: 'any-role' satisfies RouteAccess },
      schema: {
        tags: ['admin'],
        summary: 'Evaluate a flag for a context, as this instance would (to check targeting)',
        security,
        params: KeyParams,
        body: Type.Object(
          {
            context: Type.Optional(
              Type.Object(
                { targetingKey: Type.Optional(Type.String()) },
                { additionalProperties: true, description: 'attributes; targetingKey is what rollouts hash' },
              ),
            ),
            default: Type.Optional(Type.Unknown({ description: 'answered on an error (default null)' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Details },
      },
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) => {
      const flag = requireFlag(flags, request.params.key);
      const fallback = (request.body.default ?? null) as FlagValue;
      return flags.evaluate(flag.key, request.body.context ?? {}, fallback);
    },
  );
}

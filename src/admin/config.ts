import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { RevisionInfo } from '../config/index.js';
import type { Bulwark } from '../runtime/create.js';
import type { RouteAccess } from './access.js';
import { adminActor } from './actor.js';

const security = [{ adminKey: [] }];
/** Diff entries a revision carries in a list answer; the whole diff is `GET /config/revisions/:revision`. */
export const LIST_DIFF_ENTRIES = 20;
/** Revisions a list answer carries at most. */
export const MAX_REVISIONS = 200;

const Diff = Type.Array(
  Type.Object({
    path: Type.String({ description: 'dotted path, e.g. db.poolSize' }),
    before: Type.Optional(
      Type.Unknown({ description: 'absent when the field was added; secrets [redacted]' }),
    ),
    after: Type.Optional(
      Type.Unknown({ description: 'absent when the field was removed; secrets [redacted]' }),
    ),
  }),
);
const Revision = Type.Object({
  revision: Type.Integer(),
  at: Type.String({ description: 'ISO 8601 time of the write' }),
  author: Type.String({ description: 'who wrote it: key:<name>, admin, cli:<user>, file, process:<pid>' }),
  reason: Type.String(),
  diff: Diff,
  diffTotal: Type.Integer({ description: 'entries of the whole diff (the list carries the first 20)' }),
});
const Revision1 = Type.Object({ revision: Type.Integer({ minimum: 1 }) });

/** A revision as a list shows it: its diff cut to `max` entries, with the whole count. */
function listed(info: RevisionInfo, max: number) {
  return { ...info, diff: info.diff.slice(0, max), diffTotal: info.diff.length };
}

/**
 * The config routes of the admin API over `bulwark.config` (register only when it exists, inside the
 * authenticated, audited admin scope): the active config (secrets redacted), its revisions (newest
 * first, paginated by `before`), the diff of two revisions, validating a whole config without writing
 * it (a viewer may: it changes nothing), and a rollback (operators; audited `config.rollback` with
 * the request's actor, who is also the new revision's author).
 *
 * Errors: an unknown or pruned revision 404 `BWK_ERR_CONFIG_REVISION_NOT_FOUND`; a rollback whose
 * `ifRevision` is not the current revision 409 `BWK_ERR_CONFIG_CONFLICT`; a config that does not
 * validate 400 `BWK_ERR_CONFIG_INVALID` naming every field in `details` (nothing written); another
 * writer holding the file 503 `BWK_ERR_CONFIG_LOCKED`.
 */
export function registerConfigRoutes(admin: FastifyInstance, bulwark: Bulwark): void {
  const config = bulwark.config;
  if (config === undefined) return;
  const typed = admin.withTypeProvider<TypeBoxTypeProvider>();

  typed.get(
    '/config',
    {
      schema: {
        tags: ['admin'],
        summary: 'The active service config (secrets redacted), its revision and file',
        security,
        response: {
          200: Type.Object({
            revision: Type.Integer({
              description: '0: no file was ever recorded (defaults and environment)',
            }),
            file: Type.String(),
            config: Type.Record(Type.String(), Type.Unknown()),
          }),
        },
      },
    },
    async () => ({ revision: config.revision, file: config.file, config: config.redacted() }),
  );

  typed.get(
    '/config/revisions',
    {
      schema: {
        tags: ['admin'],
        summary: 'Config revisions, newest first: who, when, why and what changed',
        description:
          'Pages: `before` a revision number (the `next` of the previous page). Each revision carries the first 20 entries of its diff and `diffTotal`; `GET /config/revisions/:revision` has the whole diff.',
        security,
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_REVISIONS, default: 50 })),
          before: Type.Optional(Type.Integer({ minimum: 1 })),
        }),
        response: {
          200: Type.Object({
            revisions: Type.Array(Revision),
            next: Type.Union([Type.Integer(), Type.Null()], { description: 'the `before` of the next page' }),
          }),
        },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 50;
      // One more than asked, to know whether there is a next page.
      const found = await config.history(limit + 1, request.query.before);
      const page = found.slice(0, limit).map((info) => listed(info, LIST_DIFF_ENTRIES));
      return { revisions: page, next: found.length > limit ? (page.at(-1)?.revision ?? null) : null };
    },
  );

  typed.get(
    '/config/revisions/:revision',
    {
      schema: {
        tags: ['admin'],
        summary: 'One config revision with its whole diff',
        security,
        params: Revision1,
        response: { 200: Revision },
      },
    },
    async (request) => {
      const { revision } = request.params;
      const [info] = await config.history(1, revision + 1);
      // Not kept (never written, or pruned): the manager's own coded 404, naming the revisions kept.
      if (info?.revision !== revision) await config.diff(revision, revision);
      return listed(info as RevisionInfo, Infinity);
    },
  );

  typed.get(
    '/config/diff',
    {
      schema: {
        tags: ['admin'],
        summary: 'The changes from one config revision to another (defaults + file; secrets redacted)',
        security,
        querystring: Type.Object({ from: Type.Integer({ minimum: 1 }), to: Type.Integer({ minimum: 1 }) }),
        response: { 200: Type.Object({ from: Type.Integer(), to: Type.Integer(), diff: Diff }) },
      },
    },
    async (request) => {
      const { from, to } = request.query;
      return { from, to, diff: await config.diff(from, to) };
    },
  );

  typed.post(
    '/config/validate',
    {
      config: { adminAccess: 'any-role' satisfies RouteAccess },
      schema: {
        tags: ['admin'],
        summary: 'Validate a whole config (the file’s content as JSON) without writing it',
        description:
          'Checked as a replace would be: schema defaults + this body + the environment. Answers `{ valid: true, diff }` (what it would change in the file’s config), or 400 `BWK_ERR_CONFIG_INVALID` with every bad field in `details`. Nothing is written; a viewer may call it.',
        security,
        body: Type.Object({}, { additionalProperties: true, description: 'the whole config file content' }),
        response: { 200: Type.Object({ valid: Type.Literal(true), revision: Type.Integer(), diff: Diff }) },
      },
    },
    async (request) => ({
      valid: true as const,
      revision: config.revision,
      diff: config.validate(request.body as Record<string, unknown>),
    }),
  );

  typed.post(
    '/config/rollback',
    {
      schema: {
        tags: ['admin'],
        summary: 'Write an earlier revision’s content again, as a new revision (audited)',
        description:
          'Validated and written like any change (locked, atomic); every instance watching the file reloads it. `ifRevision`: only if the config is still at that revision (409 `BWK_ERR_CONFIG_CONFLICT` otherwise).',
        security,
        body: Type.Object(
          {
            revision: Type.Integer({ minimum: 1, description: 'the revision to restore' }),
            reason: Type.Optional(Type.String({ maxLength: 500 })),
            ifRevision: Type.Optional(Type.Integer({ minimum: 0 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            revision: Type.Integer({
              description: 'the new revision (the current one when nothing changed)',
            }),
            restored: Type.Integer(),
            previous: Type.Integer(),
          }),
        },
      },
    },
    async (request) => {
      const { revision: restored, reason, ifRevision } = request.body;
      const actor = adminActor(request);
      const previous = config.revision;
      const revision = await config.rollback(restored, {
        author: actor,
        reason: `rollback to revision ${restored}${reason === undefined ? '' : `: ${reason}`}`,
        ...(ifRevision === undefined ? {} : { ifRevision }),
      });
      await bulwark.store.audit.append({
        actor,
        action: 'config.rollback',
        target: `config:${path.basename(config.file)}`,
        detail: { before: previous, after: revision, restored, reason: reason ?? null },
      });
      bulwark.logger.warn({ restored, revision, previous, actor }, 'config rolled back by an admin');
      return { revision, restored, previous };
    },
  );
}

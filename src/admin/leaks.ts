import { createReadStream } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Leaks } from '../leaks/part.js';
import type { Bulwark } from '../runtime/create.js';
import { adminActor } from './actor.js';

const security = [{ adminKey: [] }];
const Snapshot = Type.Object({
  name: Type.String(),
  bytes: Type.Integer(),
  at: Type.Number({ description: 'ms since the epoch' }),
});
const Signal = Type.Object({
  signal: Type.String(),
  value: Type.Number(),
  samples: Type.Integer(),
  spanMs: Type.Number(),
  slopePerMin: Type.Union([Type.Number(), Type.Null()]),
  lowerPerMin: Type.Union([Type.Number(), Type.Null()]),
  budgetPerMin: Type.Number(),
  suspected: Type.Boolean(),
});

/**
 * Leak detection in the admin API: `GET /leaks` (the last report), `POST /heap-snapshot` (write one
 * now, audited), `GET /heap-snapshots` and `GET /heap-snapshots/:name` (download).
 */
export function registerLeakRoutes(
  admin: FastifyInstance,
  bulwark: Pick<Bulwark, 'store' | 'logger'>,
  leaks: Leaks,
): void {
  const typed = admin.withTypeProvider<TypeBoxTypeProvider>();
  typed.get(
    '/leaks',
    {
      schema: {
        tags: ['admin'],
        summary:
          'Leak detection: each signal with its growth and budget, and store connections held too long',
        security,
        response: {
          200: Type.Object({
            at: Type.Union([Type.Number(), Type.Null()]),
            enabled: Type.Boolean(),
            signals: Type.Array(Signal),
            heldConnections: Type.Union([
              Type.Array(
                Type.Object({
                  heldMs: Type.Number(),
                  stack: Type.String(),
                  lastQuery: Type.Optional(Type.String()),
                }),
              ),
              Type.Null(),
            ]),
          }),
        },
      },
    },
    async () => {
      const report = leaks.detector.report();
      return {
        at: report.at ?? null,
        enabled: report.enabled,
        signals: report.signals.map((s) => ({
          ...s,
          slopePerMin: s.slopePerMin ?? null,
          lowerPerMin: s.lowerPerMin ?? null,
        })),
        heldConnections: report.heldConnections ?? null,
      };
    },
  );

  typed.post(
    '/heap-snapshot',
    {
      schema: {
        tags: ['admin'],
        summary:
          "Write a snapshot of this instance's heap to <dataDir>/heap/ (pauses the process while written)",
        description:
          'One at a time (409 BWK_ERR_LEAKS_SNAPSHOT_BUSY), refused when the heap is above the limit or the disk is short (409 BWK_ERR_LEAKS_SNAPSHOT_REFUSED); the oldest snapshots beyond the kept number are deleted first. Open it in Chrome DevTools (Memory tab).',
        security,
        response: { 201: Snapshot },
      },
    },
    async (request, reply) => {
      const snapshot = await leaks.snapshots.take();
      await bulwark.store.audit.append({
        actor: adminActor(request),
        action: 'leaks.heap-snapshot',
        target: `heap-snapshot:${snapshot.name}`,
        detail: { bytes: snapshot.bytes, dir: leaks.snapshots.dir },
      });
      bulwark.logger.warn({ snapshot }, 'heap snapshot written by an admin');
      return reply.code(201).send(snapshot);
    },
  );

  typed.get(
    '/heap-snapshots',
    {
      schema: {
        tags: ['admin'],
        summary: 'The heap snapshots kept in <dataDir>/heap/, oldest first',
        security,
        response: { 200: Type.Array(Snapshot) },
      },
    },
    async () => leaks.snapshots.list(),
  );

  typed.get(
    '/heap-snapshots/:name',
    {
      schema: {
        tags: ['admin'],
        summary: 'Download one heap snapshot',
        security,
        params: Type.Object({ name: Type.String({ maxLength: 200 }) }),
      },
    },
    async (request, reply) => {
      const file = await leaks.snapshots.file(request.params.name);
      return reply
        .header('content-type', 'application/octet-stream')
        .header('content-length', file.bytes)
        .header('content-disposition', `attachment; filename="${request.params.name}"`)
        .send(createReadStream(file.path));
    },
  );
}

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { bulwarkError } from '../errors/index.js';
import type { Bulwark } from '../runtime/create.js';
import { requestSupervisor } from '../supervised/control-client.js';
import { adminActor } from './actor.js';

const SupervisorViewSchema = Type.Object({
  supervised: Type.Boolean(),
  /** True when the supervisor answered; false: its last persisted state. */
  live: Type.Optional(Type.Boolean()),
  status: Type.Optional(Type.Unknown()),
});

/** What GET /admin/api/supervisor answers. */
export interface SupervisorView {
  supervised: boolean;
  live?: boolean;
  status?: unknown;
}

/**
 * The supervisor's status over its control socket (waiting at most `timeoutMs`), else its persisted
 * state (`live: false`); `{ supervised: false }` when this process does not run under it.
 */
export async function readSupervisorStatus(timeoutMs = 2_000): Promise<SupervisorView> {
  const stateDir = process.env['BULWARK_SUPERVISOR_STATE_DIR'];
  if (stateDir === undefined || stateDir === '') return { supervised: false };
  try {
    return {
      supervised: true,
      live: true,
      status: (await requestSupervisor(stateDir, 'GET', '/status', timeoutMs)).body,
    };
  } catch {
    const text = await readFile(path.join(stateDir, 'state.json'), 'utf8').catch(() => undefined);
    return {
      supervised: true,
      live: false,
      status: text === undefined ? undefined : (JSON.parse(text) as unknown),
    };
  }
}

/**
 * GET /admin/api/supervisor: the supervisor's status as `bulwark supervise status --json` shows it
 * (instances, restarts, crash records with their last log lines, recovery steps, last reload), read
 * over its control socket, or from its persisted state when it does not answer. `supervised: false`
 * when this process does not run under `bulwark supervise`.
 */
export function registerSupervisorRoutes(admin: FastifyInstance, bulwark: Pick<Bulwark, 'store'>): void {
  const typed = admin.withTypeProvider<TypeBoxTypeProvider>();
  typed.get(
    '/supervisor',
    {
      schema: {
        tags: ['admin'],
        summary: 'The supervisor: instances, restarts, crash forensics, recovery steps, last reload',
        security: [{ adminKey: [] }],
        response: { 200: SupervisorViewSchema },
      },
    },
    async () => readSupervisorStatus(),
  );

  typed.post(
    '/supervisor/reload',
    {
      schema: {
        tags: ['admin'],
        summary: 'Start a zero-downtime reload; 202 at once (its outcome: lastReload in GET /supervisor)',
        description:
          'New instances start and must pass their probes before the old ones stop; a failing new version is stopped and the old ones keep serving. The answer cannot wait for the outcome: this very instance may be one the reload replaces.',
        security: [{ adminKey: [] }],
        body: Type.Optional(
          Type.Object(
            { reason: Type.Optional(Type.String({ maxLength: 500 })) },
            { additionalProperties: false },
          ),
        ),
        response: { 202: Type.Object({ started: Type.Boolean(), at: Type.String() }) },
      },
    },
    async (request, reply) => {
      const stateDir = process.env['BULWARK_SUPERVISOR_STATE_DIR'];
      if (stateDir === undefined || stateDir === '') throw bulwarkError('BWK_ERR_ADMIN_NOT_SUPERVISED', {});
      const at = new Date().toISOString();
      await bulwark.store.audit.append({
        actor: adminActor(request),
        action: 'supervisor.reload',
        target: 'supervisor',
        detail: { reason: request.body?.reason ?? null },
      });
      // Not awaited: the supervisor may stop this instance before it could answer.
      requestSupervisor(stateDir, 'POST', '/reload').catch((error: unknown) =>
        request.log.warn({ err: error }, 'the reload request to the supervisor ended without an answer'),
      );
      return reply.code(202).send({ started: true, at });
    },
  );
}

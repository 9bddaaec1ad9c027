import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { requestSupervisor } from '../supervised/control-client.js';

const SupervisorView = Type.Object({
  supervised: Type.Boolean(),
  /** True when the supervisor answered; false: its last persisted state. */
  live: Type.Optional(Type.Boolean()),
  status: Type.Optional(Type.Unknown()),
});

/**
 * GET /admin/api/supervisor: the supervisor's status as `bulwark supervise status --json` shows it
 * (instances, restarts, crash records with their last log lines, recovery steps, last reload), read
 * over its control socket, or from its persisted state when it does not answer. `supervised: false`
 * when this process does not run under `bulwark supervise`.
 */
export function registerSupervisorRoutes(admin: FastifyInstance): void {
  admin.withTypeProvider<TypeBoxTypeProvider>().get(
    '/supervisor',
    {
      schema: {
        tags: ['admin'],
        summary: 'The supervisor: instances, restarts, crash forensics, recovery steps, last reload',
        security: [{ adminKey: [] }],
        response: { 200: SupervisorView },
      },
    },
    async () => {
      const stateDir = process.env['BULWARK_SUPERVISOR_STATE_DIR'];
      if (stateDir === undefined || stateDir === '') return { supervised: false };
      try {
        return {
          supervised: true,
          live: true,
          status: (await requestSupervisor(stateDir, 'GET', '/status', 2_000)).body,
        };
      } catch {
        const text = await readFile(path.join(stateDir, 'state.json'), 'utf8').catch(() => undefined);
        return {
          supervised: true,
          live: false,
          status: text === undefined ? undefined : (JSON.parse(text) as unknown),
        };
      }
    },
  );
}

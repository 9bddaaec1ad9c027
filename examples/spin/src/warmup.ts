// Spin's warm-up, run by server.ts once the app is built and before it listens: a scratch Spin on a
// temporary data dir, in the same process, takes a burst of joins over real HTTP on a loopback port.
// V8 then has compiled and optimised the code every join runs — Node's HTTP server, Fastify's
// hooks, Bulwark's plugin, the route, the group commit — before the first real join arrives (without
// it, 2,000 joins a second into a cold server queued for 1–2 s and hundreds were shed:
// docs/benchmarks.md). The scratch Spin shares no state with the real one: its own store (deleted
// after), its own environment (no Redis, no supervisor link, no mail), its own port.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bulwarkError } from 'bulwark';
import { Pool } from 'undici';
import { buildSpin } from './app.js';

/** The variable that sets how many joins the warm-up sends (0: none). */
const WARMUP_VARIABLE = 'SPIN_WARMUP_JOINS';
/** Joins of the warm-up by default: ~1.5 s of a start on 2 cores; V8 optimises the join's path. */
const DEFAULT_WARMUP_JOINS = 2000;
const MAX_WARMUP_JOINS = 100_000;
/** Joins in flight at once: several per group commit, as under load. */
const CONCURRENCY = 16;

/**
 * Reads SPIN_WARMUP_JOINS from `env`: a whole number from 0 (no warm-up) to 100,000; unset, 2,000.
 *
 * @throws BWK_ERR_SETTINGS_INVALID naming the variable when it is anything else.
 */
export function warmUpJoins(env: NodeJS.ProcessEnv): number {
  const raw = env[WARMUP_VARIABLE]?.trim();
  if (raw === undefined || raw === '') return DEFAULT_WARMUP_JOINS;
  const joins = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (joins <= MAX_WARMUP_JOINS) return joins;
  const message = `must be a whole number of joins from 0 (no warm-up) to ${MAX_WARMUP_JOINS}, not "${raw.slice(0, 40)}"`;
  throw bulwarkError(
    'BWK_ERR_SETTINGS_INVALID',
    { summary: `${WARMUP_VARIABLE} ${message}` },
    { details: [{ field: WARMUP_VARIABLE, message }] },
  );
}

/**
 * Builds a scratch Spin, sends it `joins` joins (`CONCURRENCY` at a time, each by its own user) over
 * HTTP and closes it; its data dir is removed, also when the process exits meanwhile. Resolves with
 * how many joins were answered 200 (fewer means the warm-up found a fault: its caller logs it).
 */
export async function warmUp(joins: number): Promise<{ joins: number; answered: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'spin-warm-up-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  let answered = 0;
  try {
    const app = await buildSpin({ env: { BULWARK_DATA_DIR: dir, LOG_LEVEL: 'silent' } });
    let pool: Pool | undefined;
    try {
      const client = (pool = new Pool(await app.listen({ port: 0, host: '127.0.0.1' }), {
        connections: CONCURRENCY,
      }));
      const users = await app.spin.store.createUsers(
        Array.from({ length: joins }, (_, i) => ({
          displayName: `warm-up ${i + 1}`,
          gender: 'man' as const,
          seeking: ['woman' as const],
        })),
      );
      for (let i = 0; i < users.length; i += CONCURRENCY) {
        const statuses = await Promise.all(
          users.slice(i, i + CONCURRENCY).map(async ({ token }, j) => {
            const { statusCode, body } = await client.request({
              path: '/api/queue/join',
              method: 'POST',
              headers: { authorization: `Bearer ${token}`, 'idempotency-key': `warm-up-${i + j}` },
            });
            await body.dump();
            return statusCode;
          }),
        );
        answered += statuses.filter((status) => status === 200).length;
      }
    } finally {
      await pool?.close();
      await app.close();
    }
  } finally {
    process.off('exit', removeDir);
    removeDir();
  }
  return { joins, answered };
}

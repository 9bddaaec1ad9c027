import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createBulwark } from '../src/runtime/create.js';
import { createStore } from '../src/runtime/store.js';
import type { Store } from '../src/store/types.js';
import { dropSchema, uniqueSchema } from './helpers/postgres.js';
import { spawnTs, type Spawned } from './helpers/process.js';
import { startRedis } from './helpers/redis.js';
import { postgresForFile } from './helpers/store.js';
import { until } from './helpers/wait.js';

const pgUrl = postgresForFile();
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Ids whose add() resolved, from the fixture's "acked <from> <to>" lines. */
function acked(proc: Spawned): string[] {
  const ids: string[] = [];
  for (const match of proc.stdout().matchAll(/^acked (\d+) (\d+)$/gm))
    for (let i = Number(match[1]); i <= Number(match[2]); i += 1) ids.push(`j${i}`);
  return ids;
}

async function effects(store: Store): Promise<Map<string, number>> {
  const rows = await sql<{
    job_id: string;
    n: number;
  }>`select job_id, count(*) as n from effect_log group by job_id`.execute(store.db);
  return new Map(rows.rows.map((r) => [r.job_id, Number(r.n)]));
}

describe.each(['sqlite', 'postgres'] as const)('durable queue through kill -9 (%s, no Redis)', (engine) => {
  it(
    'every acknowledged job takes effect exactly once after a kill -9 mid-stream and a restart',
    { timeout: 90_000 },
    async () => {
      let env: NodeJS.ProcessEnv;
      let store: Store;
      let cleanup: () => Promise<void>;
      if (engine === 'sqlite') {
        const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-queue-crash-'));
        dirs.push(dir);
        env = { BULWARK_DATA_DIR: dir };
        store = await createStore({ dataDir: dir });
        cleanup = () => store.close();
      } else {
        const schema = uniqueSchema();
        env = { DATABASE_URL: pgUrl(), PG_SCHEMA: schema };
        store = await createStore({ databaseUrl: pgUrl(), schema });
        cleanup = async () => {
          await store.close();
          await dropSchema(pgUrl(), schema);
        };
      }
      try {
        const first = spawnTs('test/fixtures/queue-app.ts', [], {
          ...env,
          PRODUCE: '20000',
          LEASE_MS: '1000',
        });
        await first.waitFor('ready');
        // Kill while jobs are still being added and run.
        await until(
          async () => {
            const table = await sql<{ n: number }>`select count(*) as n from effect_log`
              .execute(store.db)
              .catch(() => undefined);
            return Number(table?.rows[0]?.n ?? 0) >= 600;
          },
          30_000,
          '600 effects',
        );
        first.child.kill('SIGKILL');
        await first.exited;
        const ackedIds = acked(first);
        expect(first.stdout()).not.toContain('produced'); // killed mid-stream
        expect(ackedIds.length).toBeGreaterThan(600);

        const second = spawnTs('test/fixtures/queue-app.ts', [], { ...env, PRODUCE: '0', LEASE_MS: '1000' });
        await second.waitFor('ready');
        await until(
          async () => {
            const left = await sql<{
              n: number;
            }>`select count(*) as n from bulwark_jobs where queue = 'work'`.execute(store.db);
            return Number(left.rows[0]?.n) === 0;
          },
          60_000,
          'queue drained',
        );
        second.child.kill('SIGTERM');
        expect((await second.exited).code).toBe(0);

        const seen = await effects(store);
        const lost = ackedIds.filter((id) => !seen.has(id));
        const duplicated = [...seen].filter(([, n]) => n > 1);
        expect(lost).toEqual([]);
        expect(duplicated).toEqual([]);
        console.log(
          `${engine}: ${ackedIds.length} acknowledged before kill -9, ${seen.size} effects, 0 lost, 0 duplicated`,
        );
      } finally {
        await cleanup();
      }
    },
  );
});

describe('BullMQ queue through a Redis outage and kill -9 of the app', () => {
  it(
    'Redis killed, then the app kill -9ed while spooling; both restarted: every acknowledged job takes effect exactly once',
    { timeout: 90_000 },
    async () => {
      const redis = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
      const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-queue-crash-redis-'));
      dirs.push(dir);
      const env = { BULWARK_DATA_DIR: dir, REDIS_URL: redis.url };
      const store = await createStore({ dataDir: dir });
      try {
        const first = spawnTs('test/fixtures/queue-app.ts', [], {
          ...env,
          PRODUCE: '20000',
          LEASE_MS: '1000',
        });
        await first.waitFor('ready');
        const effectCount = async () =>
          Number(
            (
              await sql<{ n: number }>`select count(*) as n from effect_log`
                .execute(store.db)
                .catch(() => undefined)
            )?.rows[0]?.n ?? 0,
          );
        await until(async () => (await effectCount()) >= 300, 30_000, '300 effects');
        await redis.kill(); // adds now go to the durable spool
        const ackedAtOutage = acked(first).length;
        await until(() => acked(first).length >= ackedAtOutage + 200, 10_000, '200 jobs spooled');
        first.child.kill('SIGKILL');
        await first.exited;
        const ackedIds = acked(first);
        expect(first.stdout()).not.toContain('produced');
        await redis.restart(); // AOF: every job Redis acknowledged is back

        const second = spawnTs('test/fixtures/queue-app.ts', [], { ...env, PRODUCE: '0', LEASE_MS: '1000' });
        await second.waitFor('ready');
        const observer = await createBulwark({
          env,
          logLevel: 'error',
          defaultMetrics: false,
        });
        try {
          await until(
            async () => {
              const c = (await observer.queues.counts('work')).get('work');
              return (
                observer.dependencies['redis']?.mode === 'primary' &&
                c !== undefined &&
                c.waiting + c.delayed + c.retrying + c.active === 0 &&
                (await effectCount()) >= ackedIds.length
              );
            },
            60_000,
            'queue drained',
          );
        } finally {
          await observer.close();
        }
        second.child.kill('SIGTERM');
        await second.exited;
        const seen = await effects(store);
        expect(ackedIds.filter((id) => !seen.has(id))).toEqual([]);
        expect([...seen].filter(([, n]) => n > 1)).toEqual([]);
        console.log(
          `redis: ${ackedIds.length} acknowledged (${ackedIds.length - ackedAtOutage} during the outage) before kill -9, ${seen.size} effects, 0 lost, 0 duplicated`,
        );
      } finally {
        await store.close();
        await redis.stop();
      }
    },
  );
});

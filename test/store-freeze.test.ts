// A frozen PostgreSQL must not hang Bulwark. Frozen for real: the postmaster and every backend
// SIGSTOPped, so connections stay open, the kernel still accepts new ones, and nothing answers (a hung
// host, or a network that drops everything). A query with no answer within the deadline fails with
// BWK_ERR_STORE_UNAVAILABLE naming the timeout, from the store's API and from an admin route (503),
// and the connection it was on is discarded: a connection that never answers again (its backend
// stopped while the server takes new connections) costs one deadline, not one per later query.
import type { FastifyInstance } from 'fastify';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isBulwarkError } from '../src/errors/index.js';
import type { Bulwark } from '../src/runtime/create.js';
import { openPostgres } from '../src/store/postgres.js';
import type { StoreTables } from '../src/store/types.js';
import { adminApp, adminAuth } from './helpers/admin.js';
import { startPostgres, uniqueSchema, type PostgresServer } from './helpers/postgres.js';

const HOUR = 3_600_000;
/** The deadline of the store opened by the test itself. */
const SHORT_MS = 1_000;
/** The app's deadline, from its setting. */
const APP_MS = 2_000;
/** Scheduling slack on a loaded 2-core machine: a deadline is met within it or not at all. */
const MARGIN_MS = 5_000;

/** Settles `promise`: its value or error, and how long it took. */
async function timed<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown; ms: number }> {
  const started = performance.now();
  try {
    const value = await promise;
    return { value, ms: performance.now() - started };
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
}

/** The detail of a BWK_ERR_STORE_UNAVAILABLE, or what was settled instead. */
function unavailable(outcome: { error?: unknown }): string {
  const { error } = outcome;
  if (!isBulwarkError(error, 'BWK_ERR_STORE_UNAVAILABLE')) {
    return `not BWK_ERR_STORE_UNAVAILABLE: ${'error' in outcome ? String(error) : 'resolved'}`;
  }
  return error.message;
}

describe('store: a frozen PostgreSQL answers BWK_ERR_STORE_UNAVAILABLE within the query deadline', () => {
  let server: PostgresServer;
  let app: FastifyInstance;
  let bulwark: Bulwark;
  /** The same schema through a store of the test's own, with a short deadline. */
  let short: Kysely<StoreTables>;
  const schema = uniqueSchema('freeze');

  beforeAll(async () => {
    server = await startPostgres();
    ({ app, instance: bulwark } = await adminApp({
      databaseUrl: server.url,
      storeQueryTimeoutMs: APP_MS,
      store: { schema },
      // No sampling or compaction on its own during the test: only the test's queries run.
      metricsHistory: {
        intervalMs: HOUR,
        tiers: [{ resolutionS: 3600, retentionMs: 24 * HOUR }],
        compactEveryMs: HOUR,
      },
    }));
    ({ db: short } = await openPostgres({ url: server.url, schema, queryTimeoutMs: SHORT_MS }));
  }, 60_000);

  /** Backends a test stopped by hand. */
  const stopped: number[] = [];

  // Before the app is closed (the admin helper's afterEach): a failed test may leave processes stopped.
  afterEach(async () => {
    for (const pid of stopped.splice(0)) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Exited meanwhile.
      }
    }
    await server.resume();
  });

  afterAll(async () => {
    await short?.destroy();
    await app?.close();
    await server?.stop();
  });

  const kvGet = (db: Kysely<StoreTables>) =>
    db.selectFrom('bulwark_kv').selectAll().where('namespace', '=', 'freeze').execute();
  const admin = (url: string) => app.inject({ url: `/admin/api${url}`, headers: adminAuth });

  it(
    'a frozen server: the store and an admin route answer within the deadline; after SIGCONT every call works',
    { timeout: 60_000 },
    async () => {
      await bulwark.store.kv.put('freeze', 'k', { n: 1 });
      await kvGet(short);
      // Open connections in the app's pool, so its calls below meet open connections to a frozen
      // server (the hang), not new ones (those fail at the 5 s connect timeout already).
      await Promise.all(
        Array.from({ length: 4 }, () => sql`select pg_sleep(0.05)`.execute(bulwark.store.db)),
      );
      expect((await admin('/audit')).statusCode).toBe(200);

      await server.pause();
      const [direct, call, route] = await Promise.all([
        timed(kvGet(short)),
        timed(bulwark.store.kv.get('freeze', 'k')),
        timed(admin('/audit')),
      ]);

      expect(unavailable(direct)).toContain(`no answer within ${SHORT_MS} ms (query timeout)`);
      expect(direct.ms).toBeGreaterThanOrEqual(SHORT_MS - 50);
      expect(direct.ms).toBeLessThan(SHORT_MS + MARGIN_MS);

      expect(unavailable(call)).toContain(`no answer within ${APP_MS} ms (query timeout)`);
      expect(call.ms).toBeLessThan(APP_MS + MARGIN_MS);

      const body = route.value?.json<{ error: { code: string; message: string } }>();
      expect([route.value?.statusCode, body?.error.code]).toEqual([503, 'BWK_ERR_STORE_UNAVAILABLE']);
      expect(body?.error.message).toContain(`no answer within ${APP_MS} ms`);
      expect(route.ms).toBeLessThan(APP_MS + MARGIN_MS);

      // Thawed: more calls at once than the pool holds connections, each answered at once.
      await server.resume();
      const again = await Promise.all([
        ...Array.from({ length: 12 }, () => timed(bulwark.store.kv.get('freeze', 'k'))),
        ...Array.from({ length: 12 }, () => timed(kvGet(short))),
      ]);
      expect(again.filter((o) => 'error' in o).map((o) => String(o.error))).toEqual([]);
      expect(Math.max(...again.map((o) => o.ms))).toBeLessThan(SHORT_MS);
      for (let i = 0; i < 3; i++) expect((await admin('/audit')).statusCode).toBe(200);
    },
  );

  it(
    'a connection that never answers again is discarded, not handed to the next query',
    { timeout: 60_000 },
    async () => {
      // The server takes new connections, but the backends of the connections already open are
      // stopped: those connections are dead for good, like one cut by a network fault the server
      // never saw. The first query on one times out; the next must get a fresh connection.
      const name = `bulwark_${schema}`;
      const { db } = await openPostgres({
        url: `${server.url}?application_name=${name}`,
        schema,
        queryTimeoutMs: SHORT_MS,
      });
      const observer = new pg.Client({ connectionString: server.url });
      observer.on('error', () => undefined);
      try {
        // One query at a time: the pool holds one connection, the one about to die.
        await kvGet(db);
        await observer.connect();
        const { rows } = await observer.query<{ pid: number }>(
          'select pid from pg_stat_activity where application_name = $1',
          [name],
        );
        expect(rows).toHaveLength(1);
        for (const { pid } of rows) {
          process.kill(pid, 'SIGSTOP');
          stopped.push(pid);
        }

        const first = await timed(kvGet(db));
        expect(unavailable(first)).toContain(`no answer within ${SHORT_MS} ms (query timeout)`);
        // Each following call has a fresh connection: answered at once, several times over.
        for (let i = 0; i < 5; i++) {
          const next = await timed(kvGet(db));
          expect(next.error, `call ${i + 1} after the timeout`).toBeUndefined();
          expect(next.ms).toBeLessThan(SHORT_MS);
        }
      } finally {
        await observer.end();
        await db.destroy();
      }
    },
  );
});

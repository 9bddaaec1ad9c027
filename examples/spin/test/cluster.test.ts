// Four Spin processes share one queue (the supervisor's cluster mode, `bulwark supervise --instances
// 4`, one SQLite store): 200 users join through the proxy, so their requests land on every
// instance, and all of them are paired — each exactly once, only with a compatible partner —
// whichever instance made the match and whichever one the partners talked to.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createStore } from 'bulwark';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runningPid, startSupervisor, stopSupervisors } from '../../../test/helpers/supervisor.js';
import { until } from '../../../test/helpers/wait.js';
import { spinMigrations, type SpinTables } from '../src/schema.js';
import { SpinStore } from '../src/store.js';

const BUNDLE = 'dist/spin/server.js';
const dataDir = mkdtempSync(path.join(tmpdir(), 'spin-cluster-'));
afterEach(stopSupervisors);
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const USERS = 200;

describe('Spin on four processes', { timeout: 240_000 }, () => {
  it('pairs 200 users joining through every instance, each exactly once, only compatibly', async () => {
    expect(existsSync(BUNDLE), `${BUNDLE} is missing: run npm run build`).toBe(true);
    const run = await startSupervisor(
      ['--instances', '4', '--start-timeout-ms', '60000', '--probe-interval-ms', '500'],
      { command: [process.execPath, BUNDLE], env: { BULWARK_DATA_DIR: dataDir, LOG_LEVEL: 'warn' } },
    );
    const pids = new Set<number>();
    for (let slot = 0; slot < 4; slot += 1) pids.add(await runningPid(run, slot));
    expect(pids.size).toBe(4);
    const base = `http://127.0.0.1:${run.port}`;

    // Half women seeking men, half men seeking women: everyone has a partner. Made in the store
    // (sign-up is rate limited per IP, and every request here comes from one).
    const store = await createStore({ dataDir, migrations: async (engine) => spinMigrations(engine) });
    const spinStore = new SpinStore(store);
    const tokens: string[] = [];
    for (let i = 0; i < USERS; i += 1) {
      const man = i % 2 === 1;
      const { token } = await spinStore.createUser({
        displayName: `user ${i}`,
        gender: man ? 'man' : 'woman',
        seeking: [man ? 'woman' : 'man'],
      });
      tokens.push(token);
    }
    // Joins in waves of 20 at a time, spread over the instances by the proxy.
    for (let i = 0; i < tokens.length; i += 20)
      await Promise.all(
        tokens.slice(i, i + 20).map(async (token) => {
          const res = await fetch(`${base}/api/queue/join`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'idempotency-key': `join-${token.slice(0, 8)}` },
          });
          expect(res.status).toBe(200);
        }),
      );

    try {
      const db = store.db.withTables<SpinTables>();
      await until(
        async () => (await db.selectFrom('spin_queue').select('user_id').execute()).length === 0,
        60_000,
        'everyone matched',
      );
      const matches = await db.selectFrom('spin_matches').select(['user_a', 'user_b']).execute();
      const users = new Map(
        (await db.selectFrom('spin_users').select(['id', 'gender']).execute()).map((u) => [u.id, u.gender]),
      );
      expect(matches).toHaveLength(USERS / 2);
      const seen = new Set<string>();
      for (const { user_a: a, user_b: b } of matches) {
        expect(seen.has(a) || seen.has(b), 'someone matched twice').toBe(false);
        seen.add(a);
        seen.add(b);
        expect(users.get(a)).not.toBe(users.get(b)); // a woman seeking men with a man seeking women
      }
      expect(seen.size).toBe(USERS);
    } finally {
      await store.close();
    }
    // All four instances are still up (none crashed under the joins).
    const status = await run.status();
    expect(status.instances.filter((i) => i.pid !== undefined)).toHaveLength(4);
  });
});

import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AnyPart } from '../src/parts/index.js';
import { createBulwark, openParts, type BulwarkOptions } from '../src/runtime/create.js';
import { createStore } from '../src/runtime/store.js';
import { MIGRATION_TABLE, type Store } from '../src/store/index.js';
import { spawnTs } from './helpers/process.js';
import { BULWARK_MIGRATIONS, rejection, tempDir } from './helpers/store.js';

const BULWARK = BULWARK_MIGRATIONS;

/** A part of the application that owns a table, as a user adds one with `options.parts`. */
function ordersPart(name = 'orders', migration = '0100_orders'): AnyPart {
  return {
    name,
    needs: ['store'],
    checks: [],
    migrations: () =>
      Promise.resolve({
        [migration]: {
          async up(db) {
            await db.schema.createTable(`app_${name}`).addColumn('id', 'integer').execute();
          },
          async down(db) {
            await db.schema.dropTable(`app_${name}`).execute();
          },
        },
      }),
    start: ({ store }: { store: Store }) => store,
  };
}

async function appliedNames(store: Store): Promise<string[]> {
  const states = await store.migrations.status();
  expect(states.every((m) => m.executedAt !== undefined)).toBe(true);
  return states.map((m) => m.name);
}

describe('migrations registered by the parts that own them', () => {
  let dir: string;
  let options: BulwarkOptions;
  beforeEach(async () => {
    dir = await tempDir();
    options = { dataDir: dir, env: {}, logLevel: 'silent', defaultMetrics: false, metricsHistory: false };
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("opening some parts (the CLI's flags) migrates the whole schema history, not only theirs", async () => {
    const opened = await openParts(['flags'], options);
    try {
      expect(await appliedNames(opened.get<Store>('store'))).toEqual(BULWARK);
    } finally {
      await opened.close();
    }
  });

  it("applies an application part's migrations after Bulwark's, in name order, whichever parts open the store", async () => {
    const withOrders = { ...options, parts: (parts: AnyPart[]) => [...parts, ordersPart()] };
    const bulwark = await createBulwark(withOrders);
    try {
      expect(await appliedNames(bulwark.store)).toEqual([...BULWARK, '0100_orders']);
      await sql`insert into app_orders (id) values (1)`.execute(bulwark.store.db);
    } finally {
      await bulwark.close();
    }
    // Opening only the flags with the same parts knows the part's migration too.
    const opened = await openParts(['flags'], withOrders);
    await opened.close();
    // A store opened without the part (Bulwark's own history: the CLI) opens, and says whose it is.
    const store = await createStore({ dataDir: dir });
    try {
      const states = await store.migrations.status();
      expect(states.filter((m) => m.foreign)).toEqual([
        { name: '0100_orders', executedAt: expect.any(Number) as number, foreign: true },
      ]);
      expect(states.filter((m) => !m.foreign).map((m) => m.name)).toEqual(BULWARK);
      await sql`insert into app_orders (id) values (2)`.execute(store.db);
    } finally {
      await store.close();
    }
  });

  it("applies a later migration of Bulwark's that sorts before an app's applied one (an upgrade), and only the app may revert its own", async () => {
    // The app's part is applied first; the upgrade brings `0099_upgrade`, which sorts before it.
    const app = { ...options, parts: (parts: AnyPart[]) => [...parts, ordersPart()] };
    await (await createBulwark(app)).close();
    const upgraded = {
      ...options,
      parts: (parts: AnyPart[]) => [...parts, ordersPart(), ordersPart('upgrade', '0099_upgrade')],
    };
    const bulwark = await createBulwark(upgraded);
    try {
      expect((await bulwark.store.migrations.status()).map((m) => m.name)).toEqual([
        ...BULWARK,
        '0099_upgrade',
        '0100_orders',
      ]);
      await sql`insert into app_upgrade (id) values (1)`.execute(bulwark.store.db);
    } finally {
      await bulwark.close();
    }
    // Without the app's part (the upgraded Bulwark alone: its CLI, say), reverting its own latest
    // works; reaching the app's migration, it refuses, naming it.
    const alone = await createBulwark({
      ...options,
      parts: (parts: AnyPart[]) => [...parts, ordersPart('upgrade', '0099_upgrade')],
    });
    const store = alone.store;
    try {
      expect(await store.migrations.down(1)).toEqual(['0099_upgrade']);
      const error = await rejection(store.migrations.down(1), 'BWK_ERR_STORE_MIGRATION_FAILED');
      expect(error).toMatchObject({ migration: '0100_orders', direction: 'down' });
      expect(String(error.detail)).toContain('a part this process does not include');
      await sql`insert into app_orders (id) values (3)`.execute(store.db);
    } finally {
      await alone.close();
    }
  });

  it('refuses two parts that declare one migration name, naming both, and leaves nothing open', async () => {
    const error = await rejection(
      createBulwark({ ...options, parts: (parts) => [...parts, ordersPart('billing', '0003_jobs')] }),
      'BWK_ERR_STORE_MIGRATION_FAILED',
    );
    expect(String(error.detail)).toContain(
      'migration 0003_jobs is declared by two parts: queues and billing',
    );
    // Nothing was applied (the list is read before any migration runs) and the file is not held.
    const store = await createStore({ dataDir: dir, migrate: false });
    try {
      expect((await store.migrations.status()).every((m) => m.executedAt === undefined)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it(
    'processes starting Bulwark at once on one new SQLite file all start, and each migration is applied once',
    { timeout: 60_000 },
    async () => {
      const dataDir = path.join(dir, 'data');
      // Each process starts Bulwark the moment this file appears, once all three have booted (a
      // fixed start time raced nothing on a slow host, where booting took up to 6 s).
      const go = path.join(dir, 'go');
      const runs = Array.from({ length: 3 }, () => spawnTs('test/fixtures/start-race.ts', [dataDir, go], {}));
      await Promise.all(runs.map((r) => r.waitFor('booted', 30_000)));
      writeFileSync(go, '');
      const codes = await Promise.all(runs.map(async (r) => (await r.exited).code));
      const output = runs.map((r) => r.stderr()).join('\n');
      expect(codes, output).toEqual([0, 0, 0]);
      for (const run of runs) {
        const states = JSON.parse(run.stdout().trim()) as { name: string; executedAt?: number }[];
        expect(states.map((m) => m.name)).toEqual(BULWARK);
        expect(states.every((m) => typeof m.executedAt === 'number')).toBe(true);
      }
      const store = await createStore({ dataDir, migrate: false });
      try {
        const rows = await sql<{
          name: string;
        }>`select name from ${sql.table(MIGRATION_TABLE)} order by name`.execute(store.db);
        expect(rows.rows.map((r) => r.name)).toEqual(BULWARK);
      } finally {
        await store.close();
      }
    },
  );
});

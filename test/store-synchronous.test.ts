// The store's `synchronous` option: SQLite's PRAGMA synchronous read back from the opened
// database, through createStore() and through createBulwark()'s `store` option, and the coded
// error for a value it does not know.
import { rm } from 'node:fs/promises';
import { sql, type Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBulwarkError } from '../src/errors/index.js';
import { createBulwark } from '../src/runtime/create.js';
import { createStore } from '../src/store/index.js';
import { LogCapture } from './helpers/app.js';
import { rejection, tempDir } from './helpers/store.js';

/** SQLite reports `synchronous` as a number: 1 = NORMAL, 2 = FULL. */
async function synchronous(db: Kysely<never>): Promise<unknown> {
  const { rows } = await sql<{ synchronous: number }>`pragma synchronous`.execute(db);
  return rows[0]?.synchronous;
}

describe("the store's synchronous option (SQLite)", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    [undefined, 1],
    ['normal', 1],
    ['full', 2],
  ] as const)('synchronous %s opens the file with PRAGMA synchronous = %i', async (value, expected) => {
    const store = await createStore({ dataDir: dir, synchronous: value });
    try {
      expect(await synchronous(store.db as unknown as Kysely<never>)).toBe(expected);
    } finally {
      await store.close();
    }
  });

  it("createBulwark({ store: { synchronous: 'full' } }) opens its store with FULL", async () => {
    const bulwark = await createBulwark({
      env: { BULWARK_DATA_DIR: dir },
      logDestination: new LogCapture(),
      defaultMetrics: false,
      metricsHistory: false,
      store: { synchronous: 'full' },
    });
    try {
      expect(await synchronous(bulwark.store.db as unknown as Kysely<never>)).toBe(2);
    } finally {
      await bulwark.close();
    }
  });

  it('refuses another value with BWK_ERR_STORE_OPTIONS naming the field, opening nothing', async () => {
    const params = await rejection(
      createStore({ dataDir: dir, synchronous: 'extra' as never }),
      'BWK_ERR_STORE_OPTIONS',
    );
    expect(params['field']).toBe('synchronous');
    expect(String(params['problem'])).toContain('"extra"');
    const error = await createBulwark({
      env: { BULWARK_DATA_DIR: dir },
      logDestination: new LogCapture(),
      defaultMetrics: false,
      metricsHistory: false,
      store: { synchronous: 'FULL' as never },
    }).catch((e: unknown) => e);
    expect(isBulwarkError(error, 'BWK_ERR_STORE_OPTIONS')).toBe(true);
  });
});

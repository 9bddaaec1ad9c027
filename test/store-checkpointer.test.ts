// The store's WAL checkpoints on a worker thread (`checkpoint: 'background'`, the default): once
// the WAL has grown, the app's connection checkpoints no more (wal_autocheckpoint 0) and the worker
// copies the WAL into the database file, which a copy of that file alone (no -wal) proves; when
// writes never pause, the app's connection checkpoints once per restartFrames so that the WAL
// starts over; `checkpoint: 'inline'` keeps
// SQLite's own; close leaves no WAL behind; an unknown value is a coded error.
import { copyFileSync, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBulwark } from '../src/runtime/create.js';
import type { Checkpointer, CheckpointStats } from '../src/store/checkpointer.js';
import { createStore, SQLITE_FILE_NAME, type Store } from '../src/store/index.js';
import { LogCapture } from './helpers/app.js';
import { rejection, tempDir } from './helpers/store.js';

/** The store's checkpointer (not part of the Store interface). */
const checkpointer = (store: Store) =>
  (store as unknown as { checkpointer: Checkpointer | undefined }).checkpointer;

async function autocheckpoint(store: Store): Promise<number | undefined> {
  const { rows } = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(store.db);
  return rows[0]?.wal_autocheckpoint;
}

/** Writes `count` entries of ~1 KiB each, `perBatch` to a statement. */
async function write(store: Store, count: number, perBatch = 100, prefix = 'k'): Promise<void> {
  const value = 'x'.repeat(1000);
  for (let i = 0; i < count; i += perBatch)
    await store.kv.putMany(
      'bulk',
      Array.from({ length: Math.min(perBatch, count - i) }, (_, j) => ({ key: `${prefix}${i + j}`, value })),
    );
}

/**
 * Writes with no pause but a turn of the event loop now and then (as a busy app's), for up to 10 s,
 * until the checkpointer's stats satisfy `done`; resolves with the last stats.
 */
async function writeUntil(store: Store, done: (stats: CheckpointStats) => boolean): Promise<CheckpointStats> {
  const started = Date.now();
  let stats = await checkpointer(store)!.stats();
  for (let batch = 0; !done(stats) && Date.now() - started < 10_000; batch += 1) {
    await write(store, 50, 50, `b${batch}-`);
    if (batch % 5 === 0) await new Promise((resolve) => setImmediate(resolve));
    if (batch % 50 === 0) stats = await checkpointer(store)!.stats();
  }
  return stats;
}

/** Rows of `bulk` in a copy of the database file alone: what checkpoints have copied into it. */
function rowsInFileAlone(dir: string): number {
  const copy = path.join(dir, 'copy.sqlite');
  copyFileSync(path.join(dir, SQLITE_FILE_NAME), copy);
  const db = new Database(copy, { readonly: true });
  try {
    const row = db.prepare(`select count(*) as n from bulwark_kv where namespace = 'bulk'`).get() as {
      n: number;
    };
    return row.n;
  } catch (error) {
    // A copy taken while the worker was writing pages into the file can be torn (SQLITE_CORRUPT or
    // SQLITE_NOTADB): nothing to count yet; the caller copies again.
    if (['SQLITE_CORRUPT', 'SQLITE_NOTADB'].includes((error as { code?: string }).code ?? '')) return -1;
    throw error;
  } finally {
    db.close();
  }
}

async function until<T>(probe: () => Promise<T>, ok: (value: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("the store's WAL checkpoints (SQLite)", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('moves them to a worker once the WAL has grown: the file alone holds what was written', async () => {
    const store = await createStore({ dataDir: dir, checkpointer: { fromBytes: 256 * 1024, everyMs: 20 } });
    try {
      // Below the threshold nothing has started: SQLite's own checkpoints (1 000 pages).
      expect(await autocheckpoint(store)).toBe(1000);
      // ~1.5 MB: past the worker's threshold, short of the 1 000 pages (~4 MB) at which the app's
      // connection would checkpoint by itself.
      await write(store, 1500);
      const stats = await until(
        () => checkpointer(store)!.stats(),
        (s) => s.running && s.pages > 0,
      );
      expect(stats.running).toBe(true);
      expect(stats.checkpoints).toBeGreaterThan(0);
      expect(await autocheckpoint(store)).toBe(0);
      await write(store, 500, 100, 'later');
      const copied = await until(
        () => Promise.resolve(rowsInFileAlone(dir)),
        (n) => n === 2000,
      );
      expect(copied).toBe(2000);
    } finally {
      await store.close();
    }
    // The app's connection, the last one, checkpointed and removed the WAL on close.
    expect(existsSync(path.join(dir, `${SQLITE_FILE_NAME}-wal`))).toBe(false);
    const reopened = await createStore({ dataDir: dir });
    try {
      expect((await reopened.kv.getMany('bulk', ['k0', 'k1499', 'later499'])).size).toBe(3);
    } finally {
      await reopened.close();
    }
  });

  it('has the app connection checkpoint once when writes never pause and the WAL passes restartFrames', async () => {
    const store = await createStore({
      dataDir: dir,
      checkpointer: { fromBytes: 64 * 1024, everyMs: 10, restartFrames: 200 },
    });
    try {
      // Until the WAL has grown past restartFrames and the app's connection has checkpointed.
      const stats = await writeUntil(store, (s) => s.restarts > 0);
      expect(stats.restarts).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });

  it('asks again for every restartFrames the WAL grows by while a reader keeps it from starting over', async () => {
    const store = await createStore({
      dataDir: dir,
      checkpointer: { fromBytes: 64 * 1024, everyMs: 10, restartFrames: 200 },
    });
    // Another connection (another process's, say) inside a read transaction: the WAL cannot start over.
    const reader = new Database(path.join(dir, SQLITE_FILE_NAME), { readonly: true });
    try {
      reader.exec('BEGIN');
      reader.prepare('select count(*) from bulwark_kv').get();
      const stats = await writeUntil(store, (s) => s.restarts >= 3);
      expect(stats.restarts).toBeGreaterThanOrEqual(3);
    } finally {
      reader.exec('COMMIT');
      reader.close();
      await store.close();
    }
  });

  it("checkpoint: 'inline' keeps SQLite's own checkpoints and starts no worker", async () => {
    const store = await createStore({ dataDir: dir, checkpoint: 'inline' });
    try {
      expect(checkpointer(store)).toBeUndefined();
      await write(store, 1500);
      expect(await autocheckpoint(store)).toBe(1000);
    } finally {
      await store.close();
    }
  });

  it("createBulwark({ store: { checkpoint: 'inline' } }) opens its store without a worker", async () => {
    const bulwark = await createBulwark({
      env: { BULWARK_DATA_DIR: dir },
      logDestination: new LogCapture(),
      defaultMetrics: false,
      metricsHistory: false,
      store: { checkpoint: 'inline' },
    });
    try {
      expect(checkpointer(bulwark.store)).toBeUndefined();
    } finally {
      await bulwark.close();
    }
    const defaults = await createBulwark({
      env: { BULWARK_DATA_DIR: dir },
      logDestination: new LogCapture(),
      defaultMetrics: false,
      metricsHistory: false,
    });
    try {
      expect(checkpointer(defaults.store)).toBeDefined();
    } finally {
      await defaults.close();
    }
  });

  it("an app's store starts its worker once the WAL has grown, and leak detection watches the step afresh", async () => {
    const log = new LogCapture();
    const bulwark = await createBulwark({
      env: { BULWARK_DATA_DIR: dir },
      logDestination: log,
      defaultMetrics: false,
      metricsHistory: false,
    });
    try {
      // Opened, migrated: no thread yet (an app that writes little never pays its ~9 MiB).
      expect((await checkpointer(bulwark.store)!.stats()).running).toBe(false);
      expect(await autocheckpoint(bulwark.store)).toBe(1000);
      await write(bulwark.store, 1500);
      const stats = await until(
        () => checkpointer(bulwark.store)!.stats(),
        (s) => s.running,
      );
      expect(stats.running).toBe(true);
      expect(log.lines.map((l) => l['msg'])).toContain(
        "leaks: rss, handles, fds watched afresh: the store's WAL checkpoint worker started",
      );
    } finally {
      await bulwark.close();
    }
  });

  it('starts no worker for a store in memory', async () => {
    const store = await createStore({ sqliteFile: ':memory:' });
    try {
      expect(checkpointer(store)).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('refuses another value with BWK_ERR_STORE_OPTIONS naming the field, opening nothing', async () => {
    const params = await rejection(
      createStore({ dataDir: dir, checkpoint: 'sometimes' as never }),
      'BWK_ERR_STORE_OPTIONS',
    );
    expect(params['field']).toBe('checkpoint');
    expect(existsSync(path.join(dir, SQLITE_FILE_NAME))).toBe(false);
  });
});

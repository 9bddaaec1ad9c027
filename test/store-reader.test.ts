import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedJobQueue } from '../src/queue/index.js';
import { startReader, type AsideReader } from '../src/store/reader.js';
import { createStore } from '../src/runtime/store.js';
import { SQLITE_FILE_NAME } from '../src/store/sqlite.js';
import type { Store } from '../src/store/types.js';
import { rejection } from './helpers/store.js';

// better-sqlite3 runs a query on the thread that calls it. A count over the whole job table (the
// queue state gauge, at each scrape) took ~60 ms over a 35 000-job spool under load, all of it a
// stall of the app's event loop; it now runs on the store's read worker.

const dirs: string[] = [];
const stores: Store[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-reader-'));
  dirs.push(dir);
  return dir;
}

async function fileStore(opts: { readAside?: 'worker' | 'inline' } = {}): Promise<Store> {
  const store = await createStore({ dataDir: tempDir(), ...opts });
  stores.push(store);
  return store;
}

/** `n` queued jobs of queue `big`, in one statement. */
async function fill(store: Store, n: number): Promise<void> {
  await sql`with recursive seq(i) as (select 1 union all select i + 1 from seq where i < ${n})
    insert into bulwark_jobs (queue, id, state, priority, run_at, attempts, max_attempts, data, created_at)
    select 'big', 'j' || i, 'queued', 0, 0, 0, 1, '{}', 0 from seq`.execute(store.db);
}

/** Runs `read` while a 1 ms interval ticks; resolves with its result and the longest gap between ticks. */
async function whileTicking<T>(read: () => Promise<T>): Promise<{ result: T; longestGapMs: number }> {
  let last = performance.now();
  let longestGapMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longestGapMs = Math.max(longestGapMs, now - last);
    last = now;
  }, 1);
  try {
    const result = await read();
    longestGapMs = Math.max(longestGapMs, performance.now() - last);
    return { result, longestGapMs };
  } finally {
    clearInterval(timer);
  }
}

describe("the store's read worker", () => {
  it('counts a large queue table while the event loop goes on', { timeout: 60_000 }, async () => {
    const store = await fileStore();
    const queue = new EmbeddedJobQueue({ store, pollMs: 60_000 });
    const withWorker = store as unknown as { reader: AsideReader | undefined };
    const reader = withWorker.reader;
    expect(await reader?.ready()).toBe(true);
    await fill(store, 300_000);

    // The same count on the app's connection (the store without its worker), for scale.
    withWorker.reader = undefined;
    const onLoop = await whileTicking(() => queue.counts());
    withWorker.reader = reader;
    const aside = await whileTicking(() => queue.counts());

    expect(onLoop.result).toEqual(aside.result);
    expect(aside.result.get('big')).toMatchObject({ waiting: 300_000, delayed: 0, active: 0 });
    expect(onLoop.longestGapMs).toBeGreaterThan(20);
    expect(aside.longestGapMs).toBeLessThan(onLoop.longestGapMs / 2);
    await queue.close();
  });

  it('reads what the app has just committed', async () => {
    const store = await fileStore();
    const queue = new EmbeddedJobQueue({ store, pollMs: 60_000 });
    for (let i = 1; i <= 3; i += 1) {
      await queue.add('fresh', { i });
      expect((await queue.counts('fresh')).get('fresh')?.waiting).toBe(i);
    }
    await queue.close();
  });

  it('answers on the caller’s connection when the worker cannot open the file, and says so once', async () => {
    const errors: Error[] = [];
    const reader = startReader(path.join(tmpdir(), 'bulwark-no-such-dir', 'none.sqlite'), (e) =>
      errors.push(e),
    );
    const here = () => Promise.resolve([{ n: 1 }]);
    expect(await reader.all({ sql: 'select 1 as n', parameters: [] }, here)).toEqual([{ n: 1 }]);
    expect(await reader.ready()).toBe(false);
    expect(await reader.all({ sql: 'select 1 as n', parameters: [] }, here)).toEqual([{ n: 1 }]);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/cannot open/);
    await reader.stop();
  });

  it('a query the worker refuses rejects with SQLite’s message; the worker goes on', async () => {
    const store = await fileStore();
    await store.ping();
    const reader = startReader(path.join(dirs.at(-1)!, SQLITE_FILE_NAME));
    const never = () => Promise.reject(new Error('answered on the loop'));
    expect(await reader.ready()).toBe(true);
    await expect(reader.all({ sql: 'select nope from nowhere', parameters: [] }, never)).rejects.toThrow(
      /no such table/,
    );
    await expect(
      reader.all({ sql: 'delete from bulwark_jobs returning seq', parameters: [] }, never),
    ).rejects.toThrow(/readonly|query_only|attempt to write/i);
    expect(await reader.all({ sql: 'select ? + 1 as n', parameters: [41] }, never)).toEqual([{ n: 42 }]);
    await reader.stop();
  });

  it('answers the reads made while the worker starts on the caller’s connection, then on the worker', async () => {
    const store = await fileStore();
    await store.ping();
    const reader = startReader(path.join(dirs.at(-1)!, SQLITE_FILE_NAME));
    const query = { sql: 'select ? as n', parameters: ['worker'] };
    const here = () => Promise.resolve([{ n: 'here' }]);
    const started = performance.now();
    // The first read starts the worker and is not kept waiting for it (~50 ms): `here` answers.
    expect(await reader.all(query, here)).toEqual([{ n: 'here' }]);
    expect(performance.now() - started).toBeLessThan(20);
    expect(await reader.ready()).toBe(true);
    expect(await reader.all(query, here)).toEqual([{ n: 'worker' }]);
    await reader.stop();
    expect(await reader.all(query, here)).toEqual([{ n: 'here' }]);
  });

  it('a process that stops its reader while the worker starts waits for it and exits 0', async () => {
    // The worker is unref'd once it has started; were it so while stop() waits for it, a process
    // whose first read came just before its shutdown would end mid-await (exit 13) and skip the
    // rest of its shutdown.
    const store = await fileStore();
    await store.ping();
    const script = `
      import { startReader } from './src/store/reader.ts';
      const reader = startReader(process.argv[1]);
      const rows = await reader.all({ sql: 'select 1 as n', parameters: [] }, async () => [{ n: 'here' }]);
      await reader.stop();
      console.log('stopped', JSON.stringify(rows));
    `;
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script, path.join(dirs.at(-1)!, SQLITE_FILE_NAME)],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect({ status: child.status, stdout: child.stdout.trim() }).toEqual({
      status: 0,
      stdout: 'stopped [{"n":"here"}]',
    });
  });

  it("tells the store's query observer of the reads the worker answers, once each", async () => {
    const events: { operation: string; failed: boolean; durationMs: number }[] = [];
    const store = await createStore({ dataDir: tempDir(), onQuery: (event) => events.push(event) });
    stores.push(store);
    const queue = new EmbeddedJobQueue({ store, pollMs: 60_000 });
    await queue.add('seen', { n: 1 });
    expect(await (store as unknown as { reader: AsideReader }).reader.ready()).toBe(true);
    events.length = 0;
    expect((await queue.counts()).get('seen')?.waiting).toBe(1);
    expect(events.map(({ durationMs, ...rest }) => ({ ...rest, timed: durationMs >= 0 }))).toEqual([
      { engine: 'sqlite', operation: 'select', failed: false, timed: true },
    ]);
    await queue.close();
  });

  it("readAside: 'inline' runs them on the app's connection (the CLI's commands: no thread)", async () => {
    const store = await fileStore({ readAside: 'inline' });
    expect((store as unknown as { reader: unknown }).reader).toBeUndefined();
    const queue = new EmbeddedJobQueue({ store, pollMs: 60_000 });
    await queue.add('inline', { n: 1 });
    expect((await queue.counts()).get('inline')?.waiting).toBe(1);
    await queue.close();
  });

  it('refuses another readAside with BWK_ERR_STORE_OPTIONS naming the field, opening nothing', async () => {
    const dir = tempDir();
    const params = await rejection(
      createStore({ dataDir: dir, readAside: 'elsewhere' as never }),
      'BWK_ERR_STORE_OPTIONS',
    );
    expect(params['field']).toBe('readAside');
    expect(existsSync(path.join(dir, SQLITE_FILE_NAME))).toBe(false);
  });
});

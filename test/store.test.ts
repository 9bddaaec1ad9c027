import { executionAsyncResource } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sql, type Kysely, type Migration } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBulwarkError } from '../src/errors/index.js';
import { bulwarkMigrations } from '../src/runtime/parts.js';
import { SqlAuditLog } from '../src/store/audit.js';
import { isUnguarded, unguarded } from '../src/store/guarded-dialect.js';
import { AUDIT_REFUSED_TARGET, createStore, type QueryObserver } from '../src/store/index.js';
import { freePort } from './helpers/ports.js';
import { dropSchema, startPostgres, uniqueSchema, type PostgresServer } from './helpers/postgres.js';
import { spawnTs } from './helpers/process.js';
import { BULWARK_MIGRATIONS, postgresForFile, rejection, storeFixture, tempDir } from './helpers/store.js';
import { until } from './helpers/wait.js';

const pgUrl = postgresForFile();

describe.each(['sqlite', 'postgres'] as const)('store conformance: %s', (engine) => {
  const fixture = storeFixture(engine, pgUrl);

  it('leaves no promise hooks on once its migrations ran (each would cost every promise of the app)', async () => {
    // An enabled AsyncLocalStorage makes Node 20 run a hook for every promise: inside a promise
    // continuation, executionAsyncResource() is then the promise itself.
    const hooked = async () => {
      await Promise.resolve();
      return executionAsyncResource() instanceof Promise;
    };
    const store = await fixture.open({ migrate: false });
    const seen: boolean[] = [];
    await Promise.all([
      unguarded(async () => {
        await store.migrations.up();
        seen.push(isUnguarded());
      }),
      unguarded(async () => {
        await sleep(20);
        seen.push(isUnguarded());
      }),
    ]);
    expect(seen).toEqual([true, true]);
    expect(isUnguarded()).toBe(false);
    expect(await hooked()).toBe(false);
  });

  it('migrates up, reports status, reverts down (dropping the tables) and up again', async () => {
    const store = await fixture.open({ migrate: false });
    expect(store.engine).toBe(engine);
    expect(await store.migrations.status()).toEqual(
      BULWARK_MIGRATIONS.map((name) => ({ name, executedAt: undefined })),
    );
    expect(await store.migrations.up()).toEqual(BULWARK_MIGRATIONS);
    expect(await store.migrations.up()).toEqual([]);
    for (const state of await store.migrations.status()) expect(state.executedAt).toBeTypeOf('number');

    expect(await store.migrations.down(6)).toEqual([
      '0010_jobs_take_idx',
      '0009_error_trends',
      '0008_instances',
      '0007_access',
      '0006_alerts',
      '0005_metrics_history',
    ]);
    expect(await store.migrations.down(3)).toEqual(['0004_errors', '0003_jobs', '0002_audit']);
    await rejection(store.audit.list(), 'BWK_ERR_STORE_UNAVAILABLE');
    await store.kv.put('ns', 'k', 1);
    expect(await store.migrations.down(5)).toEqual(['0001_kv']);
    await rejection(store.kv.get('ns', 'k'), 'BWK_ERR_STORE_UNAVAILABLE');
    expect((await store.migrations.status()).every((m) => m.executedAt === undefined)).toBe(true);
    expect(await store.migrations.down()).toEqual([]);

    expect(await store.migrations.up()).toEqual([
      '0001_kv',
      '0002_audit',
      '0003_jobs',
      '0004_errors',
      '0005_metrics_history',
      '0006_alerts',
      '0007_access',
      '0008_instances',
      '0009_error_trends',
      '0010_jobs_take_idx',
    ]);
    expect(await store.kv.get('ns', 'k')).toBeUndefined();
  });

  it('reports a failed migration with its name, direction and cause', async () => {
    const store = await fixture.open({ migrate: false });
    await sql`create table bulwark_audit (x integer)`.execute(store.db);
    const error = await rejection(store.migrations.up(), 'BWK_ERR_STORE_MIGRATION_FAILED');
    expect(error).toMatchObject({ migration: '0002_audit', direction: 'up' });
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('putMany writes many entries at once, upserting; list pages with after; getMany reads many keys at once', async () => {
    const { kv } = await fixture.open();
    await kv.put('bulk', 'k0005', 'old');
    const entries = Array.from({ length: 2500 }, (_, i) => ({
      key: `k${String(i).padStart(4, '0')}`,
      value: { i },
    }));
    await kv.putMany('bulk', entries);
    expect(await kv.get('bulk', 'k0005')).toMatchObject({ value: { i: 5 }, version: 2 });
    expect(await kv.get('bulk', 'k2499')).toMatchObject({ value: { i: 2499 }, version: 1 });
    const page = await kv.list('bulk', { after: 'k0997', limit: 3 });
    expect(page.map((e) => e.key)).toEqual(['k0998', 'k0999', 'k1000']);
    expect((await kv.list('bulk')).length).toBe(2500);
    await kv.putMany('bulk', []);
    // getMany: the keys that exist, across chunks of 500, only in the namespace asked.
    await kv.put('other', 'k0001', 'elsewhere');
    const wanted = [...entries.slice(0, 1200).map((e) => e.key), 'missing'];
    const found = await kv.getMany<{ i: number }>('bulk', wanted);
    expect(found.size).toBe(1200);
    expect(found.get('k0005')).toMatchObject({ value: { i: 5 }, version: 2 });
    expect(found.get('k1199')?.value).toEqual({ i: 1199 });
    expect(found.has('missing')).toBe(false);
    expect((await kv.getMany('other', ['k0001', 'k0002'])).get('k0001')?.value).toBe('elsewhere');
    expect((await kv.getMany('bulk', [])).size).toBe(0);
    // deleteMany: the keys that exist, across chunks of 500, only in the namespace asked.
    expect(await kv.deleteMany('bulk', [...entries.slice(0, 1200).map((e) => e.key), 'missing'])).toBe(1200);
    expect(await kv.deleteMany('bulk', ['k0001', 'k1200'])).toBe(1);
    expect(await kv.count('bulk')).toBe(1299);
    expect(await kv.get('other', 'k0001')).toMatchObject({ value: 'elsewhere' });
    expect(await kv.deleteMany('bulk', [])).toBe(0);
  });

  it('gets, puts, deletes and lists keys by namespace and prefix', async () => {
    const { kv } = await fixture.open();
    expect(await kv.get('ns', 'missing')).toBeUndefined();
    const first = await kv.put('ns', 'a', { n: 1 });
    expect(first).toMatchObject({ namespace: 'ns', key: 'a', value: { n: 1 }, version: 1 });
    expect(first.updatedAt).toBeTypeOf('number');
    expect(await kv.put('ns', 'a', { n: 2 })).toMatchObject({ version: 2, value: { n: 2 } });
    expect(await kv.get('ns', 'a')).toMatchObject({ version: 2, value: { n: 2 } });

    for (const key of ['b', 'B', '_x', 'a_b', 'axb', 'a%', 'A_b']) await kv.put('ns', key, key);
    await kv.put('other', 'a', 'elsewhere');
    // Code-point order on both engines, whatever the PostgreSQL server's locale.
    expect((await kv.list('ns')).map((e) => e.key)).toEqual(['A_b', 'B', '_x', 'a', 'a%', 'a_b', 'axb', 'b']);
    // % and _ in a prefix are literal characters, and the match is case-sensitive.
    expect((await kv.list('ns', { prefix: 'a_' })).map((e) => e.key)).toEqual(['a_b']);
    expect((await kv.list('ns', { prefix: 'a' })).map((e) => e.key)).toEqual(['a', 'a%', 'a_b', 'axb']);
    expect((await kv.list('ns', { limit: 2 })).map((e) => e.key)).toEqual(['A_b', 'B']);
    expect(await kv.list('nobody')).toEqual([]);
    // Non-ASCII prefixes and their neighbours (the prefix is also a key range).
    for (const key of ['é', 'éa', 'ê', 'd:1', 'd;', 's:1', '😀x', '😁']) await kv.put('uni', key, key);
    expect((await kv.list('uni', { prefix: 'é' })).map((e) => e.key)).toEqual(['é', 'éa']);
    expect((await kv.list('uni', { prefix: 'd:' })).map((e) => e.key)).toEqual(['d:1']);
    expect((await kv.list('uni', { prefix: '😀' })).map((e) => e.key)).toEqual(['😀x']);
    // count: the same namespace and prefix rules as list, as a plain number on both engines.
    expect(await kv.count('ns')).toBe(8);
    expect(await kv.count('ns', { prefix: 'a_' })).toBe(1);
    expect(await kv.count('ns', { prefix: 'a' })).toBe(4);
    expect(await kv.count('uni', { prefix: 'é' })).toBe(2);
    expect(await kv.count('nobody')).toBe(0);

    expect(await kv.delete('ns', 'a')).toBe(true);
    expect(await kv.delete('ns', 'a')).toBe(false);
    expect(await kv.get('ns', 'a')).toBeUndefined();
    expect(await kv.get('other', 'a')).toMatchObject({ value: 'elsewhere', version: 1 });
  });

  it('rejects a stale or unexpected ifVersion with BWK_ERR_STORE_CONFLICT', async () => {
    const { kv } = await fixture.open();
    expect(await kv.put('ns', 'k', 'one', { ifVersion: 0 })).toMatchObject({ version: 1 });
    const taken = await rejection(kv.put('ns', 'k', 'again', { ifVersion: 0 }), 'BWK_ERR_STORE_CONFLICT');
    expect(taken).toMatchObject({ namespace: 'ns', key: 'k', expected: 0, actual: 1 });
    expect(await kv.put('ns', 'k', 'two', { ifVersion: 1 })).toMatchObject({ version: 2, value: 'two' });
    expect(
      await rejection(kv.put('ns', 'k', 'stale', { ifVersion: 1 }), 'BWK_ERR_STORE_CONFLICT'),
    ).toMatchObject({
      expected: 1,
      actual: 2,
    });
    const absent = await rejection(kv.put('ns', 'nope', 'x', { ifVersion: 3 }), 'BWK_ERR_STORE_CONFLICT');
    expect(absent).toMatchObject({ actual: 0 });
    expect(await kv.get('ns', 'k')).toMatchObject({ version: 2, value: 'two' });
    expect(await kv.get('ns', 'nope')).toBeUndefined();
  });

  it('loses no update under 50 concurrent compare-and-set increments', async () => {
    const { kv } = await fixture.open();
    let conflicts = 0;
    const increment = async (): Promise<void> => {
      for (;;) {
        const current = await kv.get<number>('counter', 'n');
        try {
          await kv.put('counter', 'n', (current?.value ?? 0) + 1, { ifVersion: current?.version ?? 0 });
          return;
        } catch (error) {
          if (!isBulwarkError(error, 'BWK_ERR_STORE_CONFLICT')) throw error;
          conflicts += 1;
        }
      }
    };
    await Promise.all(Array.from({ length: 50 }, increment));
    expect(await kv.get('counter', 'n')).toMatchObject({ value: 50, version: 50 });
    expect(conflicts).toBeGreaterThan(0);

    // Blind writes race too: each one still bumps the version exactly once.
    await Promise.all(Array.from({ length: 50 }, (_, i) => kv.put('counter', 'blind', i)));
    expect(await kv.get('counter', 'blind')).toMatchObject({ version: 50 });
  });

  it('appends audit records and lists them newest first, by target and page', async () => {
    const { audit } = await fixture.open();
    const a = await audit.append({
      actor: 'alice',
      action: 'flag.set',
      target: 'flag:x',
      detail: { on: true },
      at: 1000,
    });
    const b = await audit.append({ actor: 'bob', action: 'flag.set', target: 'flag:y' });
    const c = await audit.append({ actor: 'carol', action: 'flag.clear', target: 'flag:x', detail: null });
    expect(a).toMatchObject({ actor: 'alice', at: 1000, detail: { on: true } });
    expect(b.id).toBeGreaterThan(a.id);
    expect(b.at).toBeTypeOf('number');
    expect(b.detail).toBeUndefined();
    expect(c.detail).toBeNull();

    expect((await audit.list()).map((r) => r.id)).toEqual([c.id, b.id, a.id]);
    expect((await audit.list({ target: 'flag:x' })).map((r) => r.actor)).toEqual(['carol', 'alice']);
    expect((await audit.list({ limit: 1 })).map((r) => r.id)).toEqual([c.id]);
    expect((await audit.list({ beforeId: c.id })).map((r) => r.id)).toEqual([b.id, a.id]);
    // By actor; by action prefix, which is a prefix only (no LIKE wildcard), on both engines.
    const d = await audit.append({ actor: 'dave', action: 'flag_set', target: 'flag:z' });
    const e = await audit.append({ actor: 'erin', action: 'flag.setÿ', target: 'flag:z' });
    expect((await audit.list({ actor: 'bob' })).map((r) => r.id)).toEqual([b.id]);
    expect((await audit.list({ actionPrefix: 'flag.set' })).map((r) => r.id)).toEqual([e.id, b.id, a.id]);
    expect((await audit.list({ actionPrefix: 'flag.' })).map((r) => r.id)).toEqual([e.id, c.id, b.id, a.id]);
    expect((await audit.list({ actionPrefix: 'flag_' })).map((r) => r.id)).toEqual([d.id]);
    expect((await audit.list({ actionPrefix: 'flag%' })).map((r) => r.id)).toEqual([]);
    expect(
      (await audit.list({ actor: 'alice', actionPrefix: 'flag.', target: 'flag:x' })).map((r) => r.id),
    ).toEqual([a.id]);
    expect(await audit.list({ target: 'nothing' })).toEqual([]);
    expect((await audit.list({ excludeTarget: 'flag:x' })).map((r) => r.id)).toEqual([e.id, d.id, b.id]);
  });

  it('tallies repeated events into one summary row per key, bounded, keeping every occurrence counted', async () => {
    const store = await fixture.open({ audit: false });
    let now = 1_000;
    const audit = new SqlAuditLog({ db: store.db, engine, now: () => now, maxTallyKeys: 3 });
    const refusal = (client: string, sample = 'GET /admin/api/audit') =>
      audit.tally({
        actor: 'anonymous',
        action: 'admin.refused',
        target: AUDIT_REFUSED_TARGET,
        key: client,
        detail: { client },
        sample,
      });
    for (let i = 0; i < 10; i += 1) refusal('a', `GET /r${i % 7}`);
    now = 1_500;
    refusal('b');
    refusal('c');
    for (const client of ['d', 'e', 'd']) refusal(client); // past the 3 keys: folded
    expect(await audit.list()).toEqual([]); // nothing written yet
    now = 2_000;
    await audit.flush();
    const rows = await audit.list({ target: AUDIT_REFUSED_TARGET });
    expect(rows).toHaveLength(4);
    expect(rows.every((r) => r.at === 2_000 && r.action === 'admin.refused')).toBe(true);
    const byClient = Object.fromEntries(
      rows.map((r) => {
        const d = r.detail as { client?: string; count: number };
        return [d.client ?? 'overflow', r.detail];
      }),
    );
    expect(byClient['a']).toEqual({
      client: 'a',
      count: 10,
      firstAt: 1_000,
      lastAt: 1_000,
      samples: ['GET /r0', 'GET /r1', 'GET /r2', 'GET /r3', 'GET /r4'],
    });
    expect(byClient['b']).toMatchObject({ count: 1, firstAt: 1_500 });
    expect(byClient['overflow']).toMatchObject({ overflow: true, keys: 3, count: 3 });
    await audit.flush();
    expect(await audit.list()).toHaveLength(4); // a flush with nothing tallied writes nothing
  });

  it('prunes by per-target cap, total cap and age, batch by batch, keeping the newest', async () => {
    const store = await fixture.open({ audit: false });
    const append = async (count: number, target: string, at: number) => {
      for (let i = 0; i < count; i += 1) await store.audit.append({ actor: 'x', action: 'y', target, at });
    };
    await append(10, 'flag:old', 1_000); // older than the age limit
    await append(50, AUDIT_REFUSED_TARGET, 9_500);
    await append(30, 'flag:new', 9_600);
    const retention = {
      maxAgeMs: 1_000,
      maxRows: 40,
      targetCaps: { [AUDIT_REFUSED_TARGET]: 5 },
      batchSize: 3,
      maxBatches: 200,
    };
    const audit = new SqlAuditLog({ db: store.db, engine, now: () => 10_000, retention });
    // 45 refusals past their cap, then 5 rows past the total of 40, then the 5 old ones left.
    expect(await audit.prune()).toBe(55);
    const left = await audit.list({ limit: 1_000 });
    expect(left.filter((r) => r.target === AUDIT_REFUSED_TARGET)).toHaveLength(5);
    expect(left.filter((r) => r.target === 'flag:new')).toHaveLength(30);
    expect(left).toHaveLength(35);
    // The newest refusals were kept.
    const allIds = left.filter((r) => r.target === AUDIT_REFUSED_TARGET).map((r) => r.id);
    expect(Math.min(...allIds)).toBeGreaterThan(10 + 45);
    expect(await audit.prune()).toBe(0);

    // A run deletes at most maxBatches × batchSize rows; the next run goes on.
    await append(10, 'flag:old', 1_000);
    const small = new SqlAuditLog({
      db: store.db,
      engine,
      now: () => 10_000,
      retention: { ...retention, maxRows: 1_000, batchSize: 2, maxBatches: 2 },
    });
    // Appended last, the old rows are not the oldest by id: age only removes an expired prefix.
    expect(await small.prune()).toBe(0);
    await store.db.deleteFrom('bulwark_audit').where('target', '<>', 'flag:old').execute();
    expect([await small.prune(), await small.prune(), await small.prune()]).toEqual([4, 4, 2]);
  });

  it('runs the audit upkeep in the background and writes tallied rows on close', async () => {
    const store = await fixture.open({
      audit: { pruneEveryMs: 20, flushEveryMs: 20, retention: { maxRows: 5 } },
    });
    for (let i = 0; i < 12; i += 1) await store.audit.append({ actor: 'x', action: 'y', target: 't' });
    await until(async () => (await store.audit.list({ limit: 100 })).length === 5, 5_000, 'the prune');
    store.audit.tally({
      actor: 'anonymous',
      action: 'admin.refused',
      target: AUDIT_REFUSED_TARGET,
      key: 'k',
    });
    await until(async () => (await store.audit.list({ target: AUDIT_REFUSED_TARGET })).length === 1, 5_000);

    const quiet = await fixture.open({ audit: { pruneEveryMs: 3_600_000, flushEveryMs: 3_600_000 } });
    quiet.audit.tally({
      actor: 'anonymous',
      action: 'admin.refused',
      target: AUDIT_REFUSED_TARGET,
      key: 'q',
    });
    await quiet.close();
    const refused = await store.audit.list({ target: AUDIT_REFUSED_TARGET });
    expect(refused.map((r) => (r.detail as { count: number }).count)).toEqual([1, 1]);
  });

  it('round-trips nested JSON and refuses values JSON cannot hold', async () => {
    const { kv } = await fixture.open();
    const nested = { list: [1, { deep: [null, 'x'] }], text: 'ünï "q" 🚀', n: -1.5, yes: true, none: null };
    await kv.put('json', 'nested', nested);
    expect((await kv.get('json', 'nested'))?.value).toEqual(nested);
    for (const value of ['plain', 42, null, [1, 2]]) {
      await kv.put('json', 'scalar', value);
      expect((await kv.get('json', 'scalar'))?.value).toEqual(value);
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const bad of [undefined, 10n, cyclic]) {
      await rejection(kv.put('json', 'bad', bad), 'BWK_ERR_STORE_VALUE_INVALID');
    }
    expect(await kv.get('json', 'bad')).toBeUndefined();
  });

  it('a start with nothing pending checks the migrations in one query (no lock, no table lookup); a pending one is applied', async () => {
    const first = await fixture.open();
    await first.close();
    // What opening costs without the migrations (pragmas, a ping), then with them.
    const opening: Parameters<QueryObserver>[0][] = [];
    await fixture.open({ migrate: false, onQuery: (event) => opening.push(event) });
    const events: Parameters<QueryObserver>[0][] = [];
    await fixture.open({ onQuery: (event) => events.push(event) });
    expect(events.map((e) => [e.operation, e.failed])).toEqual([
      ...opening.map((e) => [e.operation, e.failed]),
      ['select', false],
    ]);
    // One more migration than the database has: the migrator runs and applies it.
    const more = async (on: typeof engine): Promise<Record<string, Migration>> => ({
      ...(await bulwarkMigrations(on)),
      '0099_more': {
        up: async (db: Kysely<unknown>) => {
          await db.schema.createTable('bulwark_more').addColumn('id', 'integer').execute();
        },
      },
    });
    const migrated = await fixture.open({ migrations: more });
    expect(
      (await migrated.migrations.status()).map((m) => [m.name, m.executedAt !== undefined]),
    ).toContainEqual(['0099_more', true]);
  });

  it('reports query timings to the onQuery observer', async () => {
    const events: Parameters<QueryObserver>[0][] = [];
    const store = await fixture.open({ onQuery: (event) => events.push(event) });
    events.length = 0;
    await store.kv.put('ns', 'k', 1);
    await store.kv.get('ns', 'k');
    await store.kv.delete('ns', 'k');
    await store.db
      .selectFrom('no_such_table' as 'bulwark_kv')
      .selectAll()
      .execute()
      .catch(() => undefined);
    expect(events.map((e) => [e.operation, e.failed])).toEqual([
      ['insert', false],
      ['select', false],
      ['delete', false],
      ['select', true],
    ]);
    for (const event of events) {
      expect(event.engine).toBe(engine);
      expect(event.durationMs).toBeGreaterThanOrEqual(0);
    }
  });

  it('pings, closes twice, and rejects operations after close', async () => {
    const store = await fixture.open();
    expect(await store.ping()).toBeGreaterThanOrEqual(0);
    await store.close();
    await store.close();
    await rejection(store.ping(), 'BWK_ERR_STORE_UNAVAILABLE');
    await rejection(store.kv.get('ns', 'k'), 'BWK_ERR_STORE_UNAVAILABLE');
    await rejection(
      store.audit.append({ actor: 'a', action: 'b', target: 'c' }),
      'BWK_ERR_STORE_UNAVAILABLE',
    );
  });
});

describe('store on SQLite', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates <dataDir>/bulwark.sqlite (and missing parents) in WAL mode', async () => {
    const dataDir = path.join(dir, 'nested', 'data');
    const store = await createStore({ dataDir });
    try {
      expect(existsSync(path.join(dataDir, 'bulwark.sqlite'))).toBe(true);
      const pragma = async (name: string) =>
        Object.values(
          (await sql.raw<Record<string, unknown>>(`pragma ${name}`).execute(store.db)).rows[0] ?? {},
        )[0];
      expect(await pragma('journal_mode')).toBe('wal');
      expect(await pragma('synchronous')).toBe(1); // NORMAL
      expect(await pragma('busy_timeout')).toBe(5000);
      expect(await pragma('foreign_keys')).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('serialises migrations across processes on one file: a racing process waits, then finds them applied', async () => {
    const file = path.join(dir, 'raced.sqlite');
    const startAt = Date.now() + 2500; // every process has booted by then
    const runs = Array.from({ length: 3 }, () =>
      spawnTs('test/fixtures/migrate-race.ts', [file, String(startAt)], {}),
    );
    const codes = await Promise.all(runs.map(async (r) => (await r.exited).code));
    expect(codes, runs.map((r) => r.stderr()).join('\n')).toEqual([0, 0, 0]);
    const applied = runs.map((r) => JSON.parse(r.stdout().trim()) as string[]);
    expect(applied.flat()).toEqual(['0001_slow']); // exactly one process ran it
  });

  it('a transaction that reads before it writes is not refused when another process writes meanwhile', async () => {
    // SQLite's plain BEGIN takes the write lock only at the first write; by then another process may
    // have written, and the transaction's snapshot is stale: SQLITE_BUSY at once, whatever the busy
    // timeout. The store begins every transaction IMMEDIATE, so the other process waits instead.
    const store = await createStore({ dataDir: dir });
    const file = path.join(dir, 'bulwark.sqlite');
    const insert = (key: string) =>
      `insert into bulwark_kv (namespace, key, value, version, updated_at) values ('t', '${key}', '1', 1, 0)`;
    let other: ReturnType<typeof spawn> | undefined;
    try {
      await store.db.transaction().execute(async (trx) => {
        await sql`select count(*) from bulwark_kv`.execute(trx);
        other = spawn(
          process.execPath,
          [
            '-e',
            `const db = new (require('better-sqlite3'))(${JSON.stringify(file)});
             db.pragma('busy_timeout = 5000');
             process.stdout.write('writing\\n');
             db.prepare(${JSON.stringify(insert('other'))}).run();`,
          ],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        await new Promise((resolve) => other!.stdout!.once('data', resolve));
        await sleep(300); // the other process's write has been tried (and waits, or went through)
        await sql.raw(insert('mine')).execute(trx);
      });
      const [code] = (await once(other!, 'exit')) as [number];
      expect(code).toBe(0);
      const rows = await sql<{
        key: string;
      }>`select key from bulwark_kv where namespace = 't' order by key`.execute(store.db);
      expect(rows.rows.map((r) => r.key)).toEqual(['mine', 'other']);
    } finally {
      other?.kill();
      await store.close();
    }
  });

  it('keeps data across close and reopen', async () => {
    const first = await createStore({ dataDir: dir });
    await first.kv.put('ns', 'k', { kept: true });
    await first.audit.append({ actor: 'a', action: 'b', target: 'c' });
    await first.close();
    const second = await createStore({ dataDir: dir });
    try {
      expect(await second.kv.get('ns', 'k')).toMatchObject({ value: { kept: true }, version: 1 });
      expect(await second.audit.list()).toHaveLength(1);
      expect(await second.migrations.up()).toEqual([]);
    } finally {
      await second.close();
    }
  });

  it('fails with BWK_ERR_STORE_UNAVAILABLE when the directory cannot be created', async () => {
    const file = path.join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    const error = await rejection(
      createStore({ dataDir: path.join(file, 'data') }),
      'BWK_ERR_STORE_UNAVAILABLE',
    );
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('opens an in-memory database with sqliteFile :memory:', async () => {
    const store = await createStore({ sqliteFile: ':memory:' });
    await store.kv.put('ns', 'k', 1);
    expect(await store.kv.get('ns', 'k')).toMatchObject({ value: 1 });
    await store.close();
  });
});

describe('store on PostgreSQL', () => {
  it(
    'fails fast with BWK_ERR_STORE_UNAVAILABLE when nothing listens on the port',
    { timeout: 8_000 },
    async () => {
      const port = await freePort(); // nothing listens there
      const error = await rejection(
        createStore({ databaseUrl: `postgres://bulwark:secret@127.0.0.1:${port}/db` }),
        'BWK_ERR_STORE_UNAVAILABLE',
      );
      expect(error.cause).toBeDefined();
      expect(String(error.detail)).not.toContain('secret');
    },
  );

  it('rejects a schema name it cannot put on the search_path', async () => {
    await rejection(createStore({ databaseUrl: pgUrl(), schema: 'Bad Name' }), 'BWK_ERR_STORE_UNAVAILABLE');
  });

  it('keeps schemas apart and returns BIGINT columns as numbers', async () => {
    const [one, two] = [uniqueSchema(), uniqueSchema()];
    const a = await createStore({ databaseUrl: pgUrl(), schema: one });
    const b = await createStore({ databaseUrl: pgUrl(), schema: two });
    try {
      await a.kv.put('ns', 'k', 'a');
      await b.kv.put('ns', 'k', 'b');
      expect((await a.kv.get('ns', 'k'))?.value).toBe('a');
      expect((await b.kv.get('ns', 'k'))?.value).toBe('b');
      const row = await a.db.selectFrom('bulwark_kv').select('updated_at').executeTakeFirstOrThrow();
      expect(row.updated_at).toBeTypeOf('number');
    } finally {
      await a.close();
      await b.close();
      await dropSchema(pgUrl(), one);
      await dropSchema(pgUrl(), two);
    }
  });

  it(
    'rejects ping when the server is killed, and keeps acknowledged writes',
    { timeout: 60_000 },
    async () => {
      const own = await startPostgres();
      let restarted: PostgresServer | undefined;
      try {
        const schema = uniqueSchema();
        const store = await createStore({ databaseUrl: own.url, schema });
        try {
          for (let i = 0; i < 20; i += 1) await store.kv.put('crash', `k${i}`, { i });
          await store.audit.append({ actor: 'a', action: 'before-crash', target: 't' });
          // A query in flight during the crash: its connection dies while checked out of the pool.
          const inFlight = sql`select pg_sleep(30)`.execute(store.db).then(
            () => undefined,
            (error: unknown) => error,
          );
          await until(async () => {
            const { rows } = await sql<{ n: number }>`
            select count(*)::int as n from pg_stat_activity where query like 'select pg_sleep%' and state = 'active'
          `.execute(store.db);
            return rows[0]?.n === 1;
          });
          await own.kill('SIGKILL');
          expect(await inFlight).toBeInstanceOf(Error);
          await rejection(store.ping(), 'BWK_ERR_STORE_UNAVAILABLE');
          await rejection(store.kv.get('crash', 'k0'), 'BWK_ERR_STORE_UNAVAILABLE');
        } finally {
          await store.close();
        }

        restarted = await startPostgres({ dir: own.dir });
        const again = await createStore({ databaseUrl: restarted.url, schema });
        try {
          const entries = await again.kv.list<{ i: number }>('crash');
          expect(entries.map((e) => e.value.i).sort((x, y) => x - y)).toEqual(
            Array.from({ length: 20 }, (_, i) => i),
          );
          expect((await again.audit.list()).map((r) => r.action)).toEqual(['before-crash']);
        } finally {
          await again.close();
        }
      } finally {
        await restarted?.stop();
        await own.stop();
      }
    },
  );
});

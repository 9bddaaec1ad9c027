// Leak detection with real processes: a fixture whose heap leaks is reported in /health and fires
// the default `bulwark.leak` alert at a real webhook within a minute, while the same fixture that only
// churns (allocations of the same size, all garbage soon) is never reported. Then the heap snapshot
// through the admin API, and a PostgreSQL connection held out of the pool, named with its stack.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LeakDetector } from '../src/leaks/detector.js';
import { createStore } from '../src/store/index.js';
import type { Store } from '../src/store/types.js';
import { adminApp, adminAuth } from './helpers/admin.js';
import { dropSchema, startPostgres, uniqueSchema, type PostgresServer } from './helpers/postgres.js';
import { listeningPort, spawnTs, type Spawned } from './helpers/process.js';
import { until } from './helpers/wait.js';
import { Registry } from 'prom-client';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bulwark-leaks-'));
  closers.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A webhook receiver keeping each notification's service, rule and status. */
async function webhook() {
  const got: { service: string; rule: string; status: string }[] = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      got.push(JSON.parse(body) as { service: string; rule: string; status: string });
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got };
}

async function leakCheck(port: number): Promise<{ status: string; output?: string } | undefined> {
  const response = await fetch(`http://127.0.0.1:${port}/health`);
  const report = (await response.json()) as {
    checks?: Record<string, { status: string; output?: string }[]>;
  };
  return report.checks?.['leaks:growth']?.[0];
}

describe('leak detection with real processes', () => {
  it('reports a leaking process in /health and by an alert within a minute, never a churning one', async () => {
    const hook = await webhook();
    const start = (mode: 'leak' | 'churn'): Spawned => {
      const proc = spawnTs('test/fixtures/leak-app.ts', [], {
        LEAK_MODE: mode,
        BULWARK_DATA_DIR: tempDir(),
        HOOK_URL: hook.url,
        LOG_LEVEL: 'warn',
      });
      closers.push(async () => {
        proc.child.kill('SIGKILL');
        await proc.exited;
      });
      return proc;
    };
    const leaking = start('leak');
    const churning = start('churn');
    const [leakPort, churnPort] = await Promise.all([
      listeningPort(leaking, /listening on (\d+)/, 60_000),
      listeningPort(churning, /listening on (\d+)/, 60_000),
    ]);
    const started = Date.now();
    const churnStates: string[] = [];
    const leakStates: string[] = [];
    let reportedAfterMs: number | undefined;
    let output = '';
    const fired = () => hook.got.some((n) => n.rule === 'bulwark.leak' && n.service === 'leak-app-leak');
    // Polled once a second (fixed-rate, not a race): the churning process must stay clean throughout,
    // for two full windows (30 s each, after a 3 s warm-up).
    while (Date.now() - started < 150_000 && !(fired() && Date.now() - started > 70_000)) {
      const [leak, churn] = await Promise.all([leakCheck(leakPort), leakCheck(churnPort)]);
      churnStates.push(`${churn?.status} ${churn?.output ?? ''}`);
      leakStates.push(
        `${Math.round((Date.now() - started) / 1000)} s: ${leak?.status} ${leak?.output ?? ''}`,
      );
      if (leak?.status === 'warn' && reportedAfterMs === undefined) {
        reportedAfterMs = Date.now() - started;
        output = leak.output ?? '';
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    expect(reportedAfterMs, `the leak in /health; seen: ${leakStates.slice(-5).join(' | ')}`).toBeDefined();
    expect(fired(), `bulwark.leak at the webhook; got ${JSON.stringify(hook.got)}`).toBe(true);
    expect(output).toMatch(
      /heap_after_gc grows [\d.]+ MiB\/min \(95 % lower bound [\d.]+ MiB\/min > budget 1\.00 MiB\/min/,
    );
    // Within a minute of the app listening: 3 s of warm-up and 27 s of a 30 s window watched make
    // ~30 s (measured 30.2 to 30.5 s with both fixtures running, also beside stress-ng --cpu 3; 64 s
    // once in CI before the fixtures fixed V8's heap growth). The figure is printed.
    process.stdout.write(`leak reported ${reportedAfterMs} ms after the app listened\n`);
    expect(reportedAfterMs).toBeLessThan(60_000);
    expect(churnStates.filter((state) => !state.startsWith('pass'))).toEqual([]);
    expect(hook.got.filter((n) => n.service === 'leak-app-churn' && n.rule === 'bulwark.leak')).toEqual([]);
    expect(hook.got.find((n) => n.rule === 'bulwark.leak')).toMatchObject({ status: 'firing' });
  }, 240_000);
});

describe('heap snapshots through the admin API', () => {
  it('writes one at a time into <dataDir>/heap (0700, files 0600), keeps the newest, audits, lists and serves them', async () => {
    const dataDir = tempDir();
    const { app, instance } = await adminApp({ dataDir, leaks: { maxSnapshots: 2 } });
    const post = () => app.inject({ method: 'POST', url: '/admin/api/heap-snapshot', headers: adminAuth });
    const [first, second] = await Promise.all([post(), post()]);
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(409);
    expect(second.json()).toMatchObject({ error: { code: 'BWK_ERR_LEAKS_SNAPSHOT_BUSY' } });
    const snapshot = first.json<{ name: string; bytes: number }>();
    expect(snapshot.bytes).toBeGreaterThan(100_000);
    const heapDir = path.join(dataDir, 'heap');
    expect(statSync(heapDir).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(heapDir, snapshot.name)).mode & 0o777).toBe(0o600);

    expect((await post()).statusCode).toBe(201);
    expect((await post()).statusCode).toBe(201);
    const listed = await app.inject({ url: '/admin/api/heap-snapshots', headers: adminAuth });
    const names = listed.json<{ name: string }[]>().map((s) => s.name);
    expect(names).toHaveLength(2);
    expect(names).not.toContain(snapshot.name);

    const download = await app.inject({ url: `/admin/api/heap-snapshots/${names[1]}`, headers: adminAuth });
    expect(download.statusCode).toBe(200);
    expect(download.headers['content-disposition']).toBe(`attachment; filename="${names[1]}"`);
    expect((JSON.parse(download.body) as { snapshot: unknown }).snapshot).toBeDefined();
    const missing = await app.inject({
      url: '/admin/api/heap-snapshots/heap-1-1.heapsnapshot',
      headers: adminAuth,
    });
    expect(missing.json()).toMatchObject({ error: { code: 'BWK_ERR_LEAKS_SNAPSHOT_NOT_FOUND' } });
    const sneaky = await app.inject({
      url: '/admin/api/heap-snapshots/..%2Fbulwark.sqlite',
      headers: adminAuth,
    });
    expect(sneaky.statusCode).toBe(404);

    const audit = await instance.store.audit.list({ actionPrefix: 'leaks.' });
    expect(audit).toHaveLength(3);
    expect(audit[0]).toMatchObject({ actor: 'admin', action: 'leaks.heap-snapshot' });
    const report = await app.inject({ url: '/admin/api/leaks', headers: adminAuth });
    expect(report.json()).toMatchObject({ enabled: true, heldConnections: null });
  }, 60_000);

  it('refuses a snapshot while the heap is above its limit', async () => {
    const { app } = await adminApp({ dataDir: tempDir(), leaks: { maxSnapshotHeapBytes: 1_000 } });
    const refused = await app.inject({ method: 'POST', url: '/admin/api/heap-snapshot', headers: adminAuth });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ error: { code: 'BWK_ERR_LEAKS_SNAPSHOT_REFUSED' } });
    expect(refused.json<{ error: { message: string } }>().error.message).toMatch(
      /heap in use .* above the limit/,
    );
  });
});

describe('store connections held out of the pool (PostgreSQL)', () => {
  let pg: PostgresServer;
  let store: Store;
  let schema: string;
  beforeAll(async () => {
    pg = await startPostgres();
    schema = uniqueSchema();
    store = await createStore({ databaseUrl: pg.url, schema });
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    await dropSchema(pg.url, schema).catch(() => undefined);
    await pg?.stop();
  });

  it('names a connection held longer than allowed with the stack that took it, and forgets it once released', async () => {
    const detector = new LeakDetector({
      registry: new Registry(),
      checkouts: store.checkouts,
      checkoutHeldMs: 200,
    });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    // A transaction that waits on something slow: the classic way to starve a pool.
    async function slowTransaction(): Promise<void> {
      await store.db.transaction().execute(async (trx) => {
        await trx.selectFrom('bulwark_kv').select('key').execute();
        await gate;
      });
    }
    const running = slowTransaction();
    await until(() => (detector.sampleNow().heldConnections ?? []).length === 1, 10_000, 'a held connection');
    const [held] = detector.report().heldConnections ?? [];
    expect(held?.heldMs).toBeGreaterThanOrEqual(200);
    // The stack of its last statement: the application's frames, the pool's own left out.
    expect(held?.stack.split('\n')).toEqual([
      expect.stringMatching(/^at .*leaks\.test\.ts:\d+:\d+\)?$/),
      expect.stringMatching(/^at async slowTransaction .*leaks\.test\.ts:\d+:\d+\)$/),
    ]);
    expect(held?.lastQuery).toBe('select "key" from "bulwark_kv"');
    expect(detector.health()).toMatchObject({ status: 'warn' });
    expect(detector.health().output).toMatch(
      /^a store connection is held for \d+ s \(last query: select "key" from "bulwark_kv"\), taken at .*leaks\.test\.ts.* < async slowTransaction/,
    );
    release();
    await running;
    expect(detector.sampleNow().heldConnections).toEqual([]);
    expect(store.checkouts?.size).toBe(0);
  }, 30_000);
});

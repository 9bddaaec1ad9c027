import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertEngine, type AlertEngineOptions } from '../src/alerts/engine.js';
import { AlertOutbox } from '../src/alerts/outbox.js';
import { rejection } from './helpers/store.js';
import type { AlertRule } from '../src/alerts/rules.js';
import { createStore } from '../src/runtime/store.js';
import type { Store } from '../src/store/index.js';
import { spawnTs } from './helpers/process.js';
import { until } from './helpers/wait.js';

const silent = pino({ level: 'silent' });

const rule: AlertRule = {
  id: 'error-rate',
  kind: 'threshold',
  series: 'http.error_ratio{route="*"}',
  fireAbove: 0.05,
  clearAbove: 0.02,
  severity: 'critical',
  summary: 'error ratio above 5 %',
};

/** A webhook receiver that records deliveries by idempotency key; `fail` answers that status first. */
async function receiver(script: { failFirst?: number; status?: number } = {}) {
  const deliveries: { key: string; body: Record<string, unknown> }[] = [];
  let attempts = 0;
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      attempts += 1;
      if (attempts <= (script.failFirst ?? 0)) {
        response.writeHead(script.status ?? 500).end('storm');
        return;
      }
      deliveries.push({
        key: String(request.headers['idempotency-key']),
        body: JSON.parse(body) as Record<string, unknown>,
      });
      response.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    deliveries,
    attempts: () => attempts,
  };
}

const servers: http.Server[] = [];
const stores: Store[] = [];
const engines: AlertEngine[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.close();
  for (const store of stores.splice(0)) await store.close();
  for (const server of servers.splice(0)) server.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function openStore(dir?: string): Promise<{ store: Store; dir: string }> {
  const dataDir = dir ?? mkdtempSync(path.join(os.tmpdir(), 'bwk-alerts-'));
  if (dir === undefined) dirs.push(dataDir);
  const store = await createStore({ dataDir });
  stores.push(store);
  return { store, dir: dataDir };
}

function engine(
  store: Store,
  url: string,
  value: { current: number | undefined },
  extra: Partial<AlertEngineOptions> = {},
) {
  const made = new AlertEngine({
    store,
    logger: silent,
    serviceId: 'shop',
    instanceId: extra.instanceId ?? 'instance-a',
    rules: [rule],
    receivers: [{ name: 'ops', type: 'webhook', url }],
    read: () => Promise.resolve(value.current),
    retryBaseMs: 20,
    retryMaxMs: 100,
    ...extra,
  });
  engines.push(made);
  return made;
}

describe('alert engine', () => {
  it('a rule fires and resolves: each transition is delivered once, whatever the number of evaluations', async () => {
    const hook = await receiver();
    const { store } = await openStore();
    const value = { current: 0.01 as number | undefined };
    const alerts = engine(store, hook.url, value);
    await alerts.evaluateOnce();
    value.current = 0.2;
    for (let i = 0; i < 5; i++) {
      await alerts.evaluateOnce();
      await alerts.sendOnce();
    }
    value.current = 0.0;
    for (let i = 0; i < 5; i++) {
      await alerts.evaluateOnce();
      await alerts.sendOnce();
    }
    expect(hook.deliveries.map((d) => [d.key, d.body['status']])).toEqual([
      ['error-rate:1:ops', 'firing'],
      ['error-rate:2:ops', 'resolved'],
    ]);
    expect(hook.deliveries[0]?.body).toMatchObject({
      rule: 'error-rate',
      severity: 'critical',
      value: 0.2,
      service: 'shop',
    });
    expect((await alerts.rules())[0]?.status.state).toBe('inactive');
  });

  it('sent notifications leave the outbox after the retention (pruned at most hourly); pending ones stay', async () => {
    const hook = await receiver();
    const { store } = await openStore();
    const value = { current: 0.2 as number | undefined };
    const minute = 60_000;
    let now = Date.now();
    const alerts = engine(store, hook.url, value, { now: () => now, outboxRetentionMs: 10 * minute });
    const keys = async () => (await alerts.outbox.list()).map((e) => `${e.key} ${e.state}`);
    await alerts.evaluateOnce(); // firing, and the first prune (nothing to prune)
    await alerts.sendOnce();
    now += 20 * minute;
    value.current = 0;
    await alerts.evaluateOnce(); // resolved, left pending (not sent in this test)
    now += 20 * minute;
    await alerts.evaluateOnce(); // 40 min after the last prune: the sent one, 40 min old, is still there
    expect(await keys()).toEqual(['error-rate:2:ops pending', 'error-rate:1:ops sent']);
    now += 25 * minute;
    await alerts.evaluateOnce(); // over an hour on: pruned; the pending one stays however old
    expect(await keys()).toEqual(['error-rate:2:ops pending']);
  });

  it('an app report goes through the outbox once per key and receiver; an unknown receiver enqueues nothing', async () => {
    const hook = await receiver();
    const { store } = await openStore();
    const alerts = engine(store, hook.url, { current: 0 });
    const report = { key: 'spin.daily:2026-12-03', title: 'Queue health', text: 'waiting: 12\nmatched: 40' };
    expect(await alerts.report(report)).toEqual(['ops']);
    expect(await alerts.report(report)).toEqual(['ops']); // made twice (a retried job, two instances)
    await alerts.sendOnce();
    await alerts.sendOnce();
    expect(hook.deliveries).toHaveLength(1);
    expect(hook.deliveries[0]?.body).toMatchObject({
      summary: 'Queue health',
      details: 'waiting: 12\nmatched: 40',
      severity: 'info',
      service: 'shop',
    });
    await rejection(
      alerts.report({ ...report, key: 'other', receivers: ['nobody'] }),
      'BWK_ERR_ALERTS_RECEIVER_NOT_FOUND',
    );
    await expect(alerts.report({ ...report, key: 'has space' })).rejects.toThrow(/letters, digits/);
    expect(await alerts.outbox.list()).toHaveLength(1);
    // PagerDuty takes no reports: left out by default, refused when named.
    const paged = engine(
      store,
      hook.url,
      { current: 0 },
      {
        instanceId: 'instance-b',
        receivers: [
          { name: 'ops', type: 'webhook', url: hook.url },
          { name: 'pager', type: 'pagerduty', routingKey: 'k'.repeat(32) },
        ],
      },
    );
    expect(await paged.report({ ...report, key: 'spin.weekly:1' })).toEqual(['ops']);
    await expect(paged.report({ ...report, key: 'spin.weekly:2', receivers: ['pager'] })).rejects.toThrow(
      /PagerDuty/,
    );
  });

  it('a storm of 500s is retried with backoff and delivered once', async () => {
    const hook = await receiver({ failFirst: 5 });
    const { store } = await openStore();
    const alerts = engine(store, hook.url, { current: 0.5 });
    await alerts.evaluateOnce();
    await until(
      async () => {
        await alerts.sendOnce();
        return hook.deliveries.length === 1;
      },
      10_000,
      'delivered after the storm',
    );
    for (let i = 0; i < 3; i++) await alerts.sendOnce();
    expect(hook.deliveries).toHaveLength(1);
    expect(hook.attempts()).toBe(6);
    const [entry] = await alerts.outbox.list();
    expect(entry).toMatchObject({ state: 'sent', attempts: 5, key: 'error-rate:1:ops' });
  });

  it('a receiver that refuses for good (400) is not retried: the notification is dead, with the reason', async () => {
    const hook = await receiver({ failFirst: 100, status: 400 });
    const { store } = await openStore();
    const alerts = engine(store, hook.url, { current: 0.5 });
    await alerts.evaluateOnce();
    await alerts.sendOnce();
    await alerts.sendOnce();
    expect(hook.attempts()).toBe(1);
    expect((await alerts.outbox.list())[0]).toMatchObject({ state: 'dead', attempts: 1 });
    expect((await alerts.outbox.list())[0]?.lastError).toContain('400');
  });

  it('across a restart: a transition enqueued before it is delivered once after it, and not enqueued again', async () => {
    const hook = await receiver();
    const first = await openStore();
    const value = { current: 0.5 as number | undefined };
    const before = engine(first.store, hook.url, value);
    await before.evaluateOnce(); // fired and enqueued, not sent: the process "dies" here
    await before.close();
    await first.store.close();
    const again = await openStore(first.dir);
    const after = engine(again.store, hook.url, value, { instanceId: 'instance-b' });
    for (let i = 0; i < 3; i++) {
      await after.evaluateOnce();
      await after.sendOnce();
    }
    expect(hook.deliveries.map((d) => d.key)).toEqual(['error-rate:1:ops']);
  });

  it('two instances on one store: one holds the lease and evaluates; a transition is enqueued once', async () => {
    const hook = await receiver();
    const { store, dir } = await openStore();
    const other = await openStore(dir);
    const value = { current: 0.5 as number | undefined };
    const a = engine(store, hook.url, value, { instanceId: 'a' });
    const b = engine(other.store, hook.url, value, { instanceId: 'b' });
    await Promise.all([a.evaluateOnce(), b.evaluateOnce(), a.evaluateOnce(), b.evaluateOnce()]);
    await Promise.all([a.sendOnce(), b.sendOnce()]);
    await Promise.all([a.sendOnce(), b.sendOnce()]);
    expect(hook.deliveries.map((d) => d.key)).toEqual(['error-rate:1:ops']);
    expect(await a.outbox.list()).toHaveLength(1);
  });

  it('a receiver budget defers what is over it', async () => {
    const hook = await receiver();
    const { store } = await openStore();
    const rules: AlertRule[] = Array.from({ length: 8 }, (_, i) => ({ ...rule, id: `rule-${i}` }));
    const alerts = engine(store, hook.url, { current: 0.5 }, { rules, receiverBudgetPerMinute: 5 });
    await alerts.evaluateOnce();
    expect(await alerts.sendOnce()).toBe(5);
    expect(await alerts.sendOnce()).toBe(0);
    expect((await alerts.outbox.list({ state: 'pending' })).length).toBe(3);
  });
});

describe('alert delivery across a process crash', () => {
  it('a transition enqueued while the receiver was down, then kill -9, is delivered once after the restart', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bwk-alerts-crash-'));
    dirs.push(dir);
    const valueFile = path.join(dir, 'value');
    writeFileSync(valueFile, '5');
    // The receiver holds its port from the start (no other process can take it before it is up) and
    // is down by resetting every connection until `up`.
    let up = false;
    const deliveries: string[] = [];
    const server = http.createServer((request, response) => {
      deliveries.push(String(request.headers['idempotency-key']));
      request.resume();
      response.writeHead(200).end();
    });
    server.on('connection', (socket) => {
      if (!up) socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    const port = (server.address() as AddressInfo).port;
    const env = { BULWARK_DATA_DIR: dir, VALUE_FILE: valueFile, HOOK_URL: `http://127.0.0.1:${port}/hook` };
    const first = spawnTs('test/fixtures/alerts-app.ts', [], env);
    await first.waitFor('started');
    const store = (await openStore(dir)).store;
    const outbox = new AlertOutbox(store.db);
    await until(
      async () => (await outbox.list()).some((e) => e.attempts >= 2),
      10_000,
      'failed attempts while the receiver is down',
    );
    first.child.kill('SIGKILL');
    await first.exited;
    // The receiver comes up; the app restarts (its lease expires within 1 s).
    up = true;
    const second = spawnTs('test/fixtures/alerts-app.ts', [], env);
    await second.waitFor('started');
    await until(() => deliveries.length === 1, 10_000, 'the firing delivered');
    writeFileSync(valueFile, '0');
    await until(() => deliveries.length === 2, 10_000, 'the resolve delivered');
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(deliveries).toEqual(['value-high:1:hook', 'value-high:2:hook']);
    second.child.kill('SIGTERM');
    await second.exited;
  });
});

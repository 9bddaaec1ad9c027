// A lease holder paused past its lease (a GC pause, a stopped VM) resumes after another instance took
// the lease and moved the alert on. Only the compare-and-set on the state row's version stops its
// stale write: the lease is not checked again between the read and the write.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertEngine } from '../src/alerts/engine.js';
import type { Notification, Receiver } from '../src/alerts/notifiers.js';
import type { AlertRule } from '../src/alerts/rules.js';
import { createStore } from '../src/runtime/store.js';
import type { Store } from '../src/store/index.js';

const LEASE_MS = 10_000;
const HIGH = 0.5;
const LOW = 0.0;

const rule: AlertRule = {
  id: 'error-rate',
  kind: 'threshold',
  series: 'http.error_ratio{route="*"}',
  fireAbove: 0.05,
  clearAbove: 0.02,
  severity: 'critical',
  summary: 'error ratio above 5 %',
  // An action runs once per committed firing: a stale commit would run it again.
  action: { type: 'log' },
};

const stores: Store[] = [];
const engines: AlertEngine[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.close();
  for (const store of stores.splice(0)) await store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A value read that the test holds until it calls `release(value)`; `entered` resolves when it is called. */
function heldRead() {
  let entered!: () => void;
  let release!: (value: number) => void;
  const enteredPromise = new Promise<void>((resolve) => (entered = resolve));
  const released = new Promise<number>((resolve) => (release = resolve));
  return {
    read: () => {
      entered();
      return released;
    },
    entered: enteredPromise,
    release,
  };
}

describe('alert state compare-and-set against a lease holder paused past its lease', () => {
  it('the stale holder’s write is rejected: no second action, no duplicate notification, no rollback', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bwk-alerts-race-'));
    dirs.push(dir);
    // Two connections to one database file, as two processes of one service have.
    const [storeA, storeB] = [await createStore({ dataDir: dir }), await createStore({ dataDir: dir })];
    stores.push(storeA, storeB);
    let clock = 1_700_000_000_000;
    const acted: string[] = [];
    const delivered: [string, string][] = [];
    const receivers: Receiver[] = [{ name: 'ops', type: 'webhook', url: 'http://127.0.0.1:9/unused' }];
    const engine = (store: Store, instanceId: string, read: () => Promise<number>) => {
      const made = new AlertEngine({
        store,
        logger: pino({ level: 'silent' }),
        serviceId: 'shop',
        instanceId,
        rules: [rule],
        receivers,
        read,
        leaseMs: LEASE_MS,
        now: () => clock,
        act: (r) => {
          acted.push(`${instanceId}:${r.id}`);
          return Promise.resolve();
        },
        deliver: (_receiver: Receiver, n: Notification) => {
          delivered.push([n.key, n.status]);
          return Promise.resolve();
        },
      });
      engines.push(made);
      return made;
    };

    let aValue: () => Promise<number> = () => Promise.resolve(LOW);
    const a = engine(storeA, 'a', () => aValue());
    let bValue = HIGH;
    const b = engine(storeB, 'b', () => Promise.resolve(bValue));

    // A holds the lease and writes the rule's first state row (inactive).
    await a.evaluateOnce();
    expect((await b.rules())[0]?.status).toMatchObject({ state: 'inactive', transitions: 0 });

    // A's next evaluation reads the row, then stops inside the series read: paused holding the lease.
    const held = heldRead();
    aValue = held.read;
    const stale = a.evaluateOnce();
    await held.entered;

    // Past A's lease, B takes it over: the rule fires, then resolves.
    clock += LEASE_MS + 1;
    await b.evaluateOnce();
    expect((await b.rules())[0]?.status).toMatchObject({ state: 'firing', transitions: 1 });
    clock += 1_000;
    bValue = LOW;
    await b.evaluateOnce();
    expect((await b.rules())[0]?.status).toMatchObject({ state: 'inactive', transitions: 2 });

    // A resumes with what it read before the pause: inactive, and now a breaching value.
    held.release(HIGH);
    await stale;

    expect((await a.rules())[0]?.status).toMatchObject({ state: 'inactive', transitions: 2 });
    expect(acted).toEqual(['b:error-rate']);
    expect((await b.outbox.list()).map((e) => e.key).reverse()).toEqual([
      'error-rate:1:ops',
      'error-rate:2:ops',
    ]);
    await b.sendOnce();
    expect(delivered).toEqual([
      ['error-rate:1:ops', 'firing'],
      ['error-rate:2:ops', 'resolved'],
    ]);
    // Nothing was left for the next evaluation to repair: still inactive, nothing new to send.
    await b.evaluateOnce();
    await b.sendOnce();
    expect((await b.rules())[0]?.status).toMatchObject({ state: 'inactive', transitions: 2 });
    expect(delivered).toEqual([
      ['error-rate:1:ops', 'firing'],
      ['error-rate:2:ops', 'resolved'],
    ]);
  });
});

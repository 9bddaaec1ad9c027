import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OpenFeature, ProviderEvents } from '@openfeature/server-sdk';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InvalidationBus } from '../src/cache/bus.js';
import { BulwarkFlagProvider } from '../src/flags/openfeature.js';
import { FlagService } from '../src/flags/service.js';
import type { FlagDefinition } from '../src/flags/types.js';
import { createStore } from '../src/store/index.js';
import type { Store } from '../src/store/types.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { rejection } from './helpers/store.js';
import { checkoutFlag } from './helpers/flags.js';
import { until } from './helpers/wait.js';

const checkout = checkoutFlag;
const who = { actor: 'test', reason: 'because' };

let redis: RedisServer;
const dirs: string[] = [];
const stores: Store[] = [];
const services: FlagService[] = [];
const buses: InvalidationBus<{ revision: number }>[] = [];
const clients: Redis[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  for (const s of services.splice(0)) s.close();
  for (const b of buses.splice(0)) b.close();
  for (const c of clients.splice(0)) c.disconnect();
  for (const s of stores.splice(0)) await s.close();
});
afterAll(async () => {
  await redis.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-flags-'));
  dirs.push(dir);
  return dir;
}

async function openStore(dir: string): Promise<Store> {
  const store = await createStore({ dataDir: dir });
  stores.push(store);
  return store;
}

/** A flag service as createBulwark builds it: store, snapshot in the data dir, optional pub/sub. */
async function service(
  dir: string,
  opts: {
    store?: Store;
    bus?: boolean;
    pollMs?: number;
    bootstrapFile?: string;
    defaults?: FlagDefinition[];
  } = {},
): Promise<FlagService> {
  const store = opts.store ?? (await openStore(dir));
  let bus: InvalidationBus<{ revision: number }> | undefined;
  if (opts.bus === true) {
    const client = new Redis(redis.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    client.on('error', () => undefined);
    clients.push(client);
    bus = new InvalidationBus<{ revision: number }>({
      client,
      channel: 'bulwark:flags',
      instanceId: `i-${services.length}`,
    });
    bus.start();
    buses.push(bus);
    await until(() => bus?.subscribed === true, 3000);
  }
  const flags = new FlagService({
    store,
    snapshotFile: path.join(dir, 'flags.snapshot.json'),
    pollMs: opts.pollMs ?? 60_000,
    ...(bus === undefined ? {} : { bus }),
    ...(opts.bootstrapFile === undefined ? {} : { bootstrapFile: opts.bootstrapFile }),
    ...(opts.defaults === undefined ? {} : { defaults: opts.defaults }),
  });
  services.push(flags);
  await flags.start();
  return flags;
}

describe('flag service', () => {
  it('stores, evaluates from memory, and audits who changed what and why', async () => {
    const flags = await service(tempDir());
    expect(flags.evaluate('new-checkout', {}, false)).toMatchObject({
      value: false,
      reason: 'ERROR',
      errorCode: 'FLAG_NOT_FOUND',
    });
    await flags.set(checkout, who);
    expect(flags.evaluate('new-checkout', { email: 'ada@acme.test' }, false)).toMatchObject({
      value: true,
      variant: 'on',
      reason: 'TARGETING_MATCH',
      rule: 'staff',
    });
    expect(flags.isEnabled('new-checkout', { email: 'bob@example.com' })).toBe(false);
    await flags.kill('new-checkout', { actor: 'oncall', reason: 'incident 42' });
    expect(flags.evaluate('new-checkout', { email: 'ada@acme.test' }, true)).toMatchObject({
      value: false,
      reason: 'DISABLED',
    });
    await flags.revive('new-checkout', who);
    const history = await flags.history('new-checkout');
    expect(history.map((h) => h.action)).toEqual(['flag.revive', 'flag.kill', 'flag.set']);
    expect(history[1]).toMatchObject({
      actor: 'oncall',
      detail: { reason: 'incident 42', before: { enabled: true }, after: { enabled: false } },
    });
    expect(flags.provenance).toMatchObject({ source: 'store', flags: 1 });
  });

  it('refuses an invalid definition naming the field, and a stale compare-and-set; nothing is written', async () => {
    const flags = await service(tempDir());
    await flags.set(checkout, who);
    const version = await flags.versionOf('new-checkout');
    const bad = await rejection(
      flags.set({ ...checkout, defaultVariant: 'maybe' }, who),
      'BWK_ERR_FLAG_INVALID',
    );
    expect(String(bad['detail'])).toContain('defaultVariant');
    await flags.set({ ...checkout, description: 'first' }, who, { ifVersion: version });
    await rejection(
      flags.set({ ...checkout, description: 'second' }, who, { ifVersion: version }),
      'BWK_ERR_STORE_CONFLICT',
    );
    expect(flags.get('new-checkout')?.description).toBe('first');
    await rejection(flags.kill('nope', who), 'BWK_ERR_FLAG_NOT_FOUND');
  });

  it('a rollout raised from 10% to 50% keeps everyone who had it', async () => {
    const flags = await service(tempDir());
    await flags.set({ ...checkout, rules: [] }, who);
    await flags.rollout('new-checkout', 10, who);
    const users = Array.from({ length: 2000 }, (_, i) => `user-${i}`);
    const at10 = users.filter((u) => flags.isEnabled('new-checkout', { targetingKey: u }));
    await flags.rollout('new-checkout', 50, who);
    const at50 = new Set(users.filter((u) => flags.isEnabled('new-checkout', { targetingKey: u })));
    expect(at10.every((u) => at50.has(u))).toBe(true);
    expect(at10.length / users.length).toBeGreaterThan(0.07);
    expect(at10.length / users.length).toBeLessThan(0.13);
    expect(at50.size / users.length).toBeGreaterThan(0.45);
    expect(flags.evaluate('new-checkout', { targetingKey: 'user-1' }, false).reason).toBe('SPLIT');
  });

  it('a change reaches another instance over pub/sub, and by polling when Redis is down', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    const a = await service(dir, { store, bus: true });
    // b polls once a minute (longer than this test): only the bus can bring it a change in time.
    const b = await service(dir, { store, bus: true, pollMs: 60_000 });
    const c = await service(dir, { store, bus: true, pollMs: 200 });
    await a.set(checkout, who);
    await until(() => b.get('new-checkout') !== undefined, 10_000, 'b sees the flag over pub/sub');
    await redis.kill();
    await a.kill('new-checkout', who);
    await until(() => c.get('new-checkout')?.enabled === false, 10_000, 'c sees the kill by polling');
    // The announcement was lost with Redis: b, which does not poll in time, still has the old state.
    expect(b.get('new-checkout')?.enabled).toBe(true);
    await redis.restart();
  });

  it('boots from the snapshot when the store is unavailable, and reports it', async () => {
    const dir = tempDir();
    const first = await service(dir);
    await first.set(checkout, who);
    const snapshot = JSON.parse(readFileSync(path.join(dir, 'flags.snapshot.json'), 'utf8')) as {
      flags: FlagDefinition[];
    };
    expect(snapshot.flags.map((f) => f.key)).toEqual(['new-checkout']);
    const broken = await createStore({ dataDir: dir });
    await broken.close(); // every query now fails as an unreachable store would
    const second = await service(dir, { store: broken });
    expect(second.provenance.source).toBe('snapshot');
    expect(second.isEnabled('new-checkout', { email: 'ada@acme.test' })).toBe(true);
  });

  it('seeds an empty store from the bootstrap file once; the store wins afterwards', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'flags.json');
    writeFileSync(file, JSON.stringify({ flags: [checkout] }));
    const store = await openStore(dir);
    const first = await service(dir, { store, bootstrapFile: file });
    expect(first.provenance).toMatchObject({ source: 'store', flags: 1 });
    await first.kill('new-checkout', who);
    const second = await service(dir, { store, bootstrapFile: file });
    expect(second.get('new-checkout')?.enabled).toBe(false); // not re-seeded over the change
  });

  it('falls back to the bootstrap file, then to the defaults; an invalid file is not used', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'flags.json');
    writeFileSync(file, JSON.stringify({ flags: [checkout] }));
    const broken = await createStore({ dataDir: dir });
    await broken.close();
    const fromFile = await service(dir, { store: broken, bootstrapFile: file });
    expect(fromFile.provenance.source).toBe('bootstrap');
    expect(fromFile.get('new-checkout')).toBeDefined();
    writeFileSync(file, JSON.stringify({ flags: [{ ...checkout, type: 'colour' }] }));
    const fallback: FlagDefinition = {
      key: 'bulwark.cache',
      type: 'boolean',
      variants: { on: true, off: false },
      defaultVariant: 'on',
      enabled: true,
    };
    const fromDefaults = await service(tempDir(), {
      store: broken,
      bootstrapFile: file,
      defaults: [fallback],
    });
    expect(fromDefaults.provenance.source).toBe('defaults');
    expect(fromDefaults.get('new-checkout')).toBeUndefined();
    expect(fromDefaults.isEnabled('bulwark.cache')).toBe(true);
  });

  it('serves OpenFeature clients with variants and reasons, and announces changes', async () => {
    const flags = await service(tempDir());
    await flags.set(checkout, who);
    const provider = new BulwarkFlagProvider(flags);
    await OpenFeature.setProviderAndWait('bulwark-test', provider);
    const client = OpenFeature.getClient('bulwark-test');
    const staff = await client.getBooleanDetails('new-checkout', false, {
      targetingKey: 'u1',
      email: 'ada@acme.test',
    });
    expect(staff).toMatchObject({
      value: true,
      variant: 'on',
      reason: 'TARGETING_MATCH',
      flagMetadata: { rule: 'staff' },
    });
    const missing = await client.getStringDetails('missing', 'fallback');
    expect(missing).toMatchObject({ value: 'fallback', reason: 'ERROR', errorCode: 'FLAG_NOT_FOUND' });
    const mismatch = await client.getNumberDetails('new-checkout', 7);
    expect(mismatch).toMatchObject({ value: 7, errorCode: 'TYPE_MISMATCH' });
    const changed: string[][] = [];
    client.addHandler(ProviderEvents.ConfigurationChanged, (details) =>
      changed.push(details?.flagsChanged ?? []),
    );
    await flags.kill('new-checkout', who);
    await until(() => changed.length > 0, 1000);
    expect(changed[0]).toEqual(['new-checkout']);
    expect(await client.getBooleanDetails('new-checkout', true)).toMatchObject({
      value: false,
      reason: 'DISABLED',
    });
    await OpenFeature.clearProviders();
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Part } from '../src/parts/index.js';
import { createBulwark, openParts, type Bulwark } from '../src/runtime/create.js';
import type { FlagService } from '../src/flags/service.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { roomInWindow, until } from './helpers/wait.js';

let redis: RedisServer;
let dir: string;
const open: Bulwark[] = [];
beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(path.join(tmpdir(), 'bulwark-flag-tools-'));
});
afterAll(async () => {
  for (const b of open) await b.close();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function instance(): Promise<Bulwark> {
  const b = await createBulwark({
    env: { REDIS_URL: redis.url, BULWARK_DATA_DIR: dir },
    logLevel: 'error',
    defaultMetrics: false,
    rateLimitPolicies: { policies: [{ name: 'one', limit: 1, windowMs: 60_000 }] },
  });
  open.push(b);
  return b;
}

const who = { actor: 'test', reason: 'drill' };

describe('every Bulwark tool has a flag and follows it live, on every instance', () => {
  it('tool flags exist by default and /health reports where flags come from', async () => {
    const a = await instance();
    expect(a.flags.list().map((f) => f.key)).toEqual([
      'bulwark.cache',
      'bulwark.errors',
      'bulwark.errors.sample',
      'bulwark.leaks',
      'bulwark.protection',
      'bulwark.queues.redis',
      'bulwark.ratelimit',
      'bulwark.redis',
    ]);
    const report = a.health.report();
    expect(report.checks?.['flags:source']?.[0]).toMatchObject({ status: 'pass', observedValue: 'store' });
    // Readiness carries the provenance too (without a non-critical check being able to fail it).
    expect(a.health.readiness().checks?.['flags:source']?.[0]).toMatchObject({ observedValue: 'store' });
  });

  it('bulwark.cache off: reads miss on both instances within 2 s; on again: served again', async () => {
    const [a, b] = [await instance(), await instance()];
    await a.cache.set('greeting', 'hello');
    expect(await b.cache.get('greeting')).toBe('hello');
    await a.flags.kill('bulwark.cache', who);
    expect(await a.cache.get('greeting')).toBeUndefined();
    await until(async () => (await b.cache.get('greeting')) === undefined, 2000, 'b stops caching');
    expect(await b.cache.getOrSet('greeting', () => 'computed')).toBe('computed');
    await a.flags.revive('bulwark.cache', who);
    await until(async () => (await b.cache.get('greeting')) === 'hello', 2000, 'b caches again');
  });

  it('bulwark.ratelimit off: everything is admitted without counting', async () => {
    const a = await instance();
    await roomInWindow(60_000, 15_000); // the refusals below need one window (CI crossed a minute here)
    expect((await a.rateLimiter.consume('k')).allowed).toBe(true);
    expect((await a.rateLimiter.consume('k')).allowed).toBe(false);
    await a.flags.kill('bulwark.ratelimit', who);
    expect(await a.rateLimiter.consume('k')).toMatchObject({ allowed: true, source: 'off' });
    await a.flags.revive('bulwark.ratelimit', who);
    expect(await a.rateLimiter.consume('k')).toMatchObject({ allowed: false });
  });

  it('bulwark.redis off forces the embedded fallback (the kill switch); on lets it fail back', async () => {
    const a = await instance();
    const redisDep = a.dependencies['redis'];
    expect(redisDep?.mode).toBe('primary');
    await a.flags.kill('bulwark.redis', who);
    expect(redisDep).toMatchObject({ forced: true, mode: 'fallback' });
    await a.flags.revive('bulwark.redis', who);
    await until(() => redisDep?.mode === 'primary', 3000);
  });

  it('bulwark.queues.redis off: new jobs go to the embedded queue; on: they move to BullMQ', async () => {
    const a = await instance();
    const spooled = async () =>
      Number(
        (await sql<{ n: number }>`select count(*) as n from bulwark_jobs`.execute(a.store.db)).rows[0]?.n,
      );
    await a.flags.kill('bulwark.queues.redis', who);
    await a.queues.add('later', { n: 1 }, { id: 'j1' });
    expect(await spooled()).toBe(1);
    await a.flags.revive('bulwark.queues.redis', who);
    await a.queues.add('later', { n: 2 }, { id: 'j2' });
    await until(async () => (await spooled()) === 0, 10_000, 'spool replayed into BullMQ');
    expect((await a.queues.list('later', 'waiting')).map((j) => j.id).sort()).toEqual(['j1', 'j2']);
  });

  it("a part of the application's own (options.parts) declares tool flags and follows them like Bulwark's", async () => {
    const followed: boolean[] = [];
    const mine: Part<'mine', string> = {
      name: 'mine',
      needs: [],
      flags: () => [{ key: 'mine.tool', description: 'the application tool' }],
      start: () => 'running',
      follow: () => ({ 'mine.tool': (on) => followed.push(on) }),
    };
    const a = await createBulwark({
      env: { BULWARK_DATA_DIR: dir },
      store: { sqliteFile: ':memory:' },
      logLevel: 'error',
      defaultMetrics: false,
      metricsHistory: false,
      parts: (parts) => [...parts, mine],
    });
    open.push(a);
    expect(a.flags.get('mine.tool')).toMatchObject({ enabled: true, description: 'the application tool' });
    expect(a.flags.isEnabled('mine.tool')).toBe(true);
    await a.flags.kill('mine.tool', who);
    expect(a.flags.isEnabled('mine.tool', {}, true)).toBe(false);
    await a.flags.revive('mine.tool', who);
    expect(followed).toEqual([false, true]);
  });

  it("a command that runs none of the application's parts knows its tool flags and can kill one", async () => {
    const appDir = mkdtempSync(path.join(dir, 'declared-'));
    const mine: Part<'mine', string> = {
      name: 'mine',
      needs: [],
      flags: () => [{ key: 'mine.switch', description: 'an application tool never changed yet' }],
      start: () => 'running',
    };
    const options = {
      env: { BULWARK_DATA_DIR: appDir },
      logLevel: 'error',
      defaultMetrics: false,
      metricsHistory: false,
    } as const;
    const app = await createBulwark({ ...options, parts: (parts) => [...parts, mine] });
    await app.close();
    // What `bulwark flags kill mine.switch` opens: the flags part alone, without the application's.
    const command = await openParts(['flags'], options);
    try {
      const flags = command.get<FlagService>('flags');
      expect(flags.get('mine.switch')).toMatchObject({
        description: 'an application tool never changed yet',
      });
      await flags.kill('mine.switch', who);
    } finally {
      await command.close();
    }
    const again = await createBulwark({ ...options, parts: (parts) => [...parts, mine] });
    try {
      expect(again.flags.isEnabled('mine.switch', {}, true)).toBe(false);
    } finally {
      await again.close();
    }
  });
});

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { HealthRegistry } from '../src/health/index.js';
import { Metrics } from '../src/metrics/index.js';
import {
  orderParts,
  partMigrations,
  startParts,
  type AnyPart,
  type PartCore,
  type PartServices,
} from '../src/parts/index.js';
import { loadSettings } from '../src/settings/index.js';

const part = (name: string, needs: string[] = [], extra: Partial<AnyPart> = {}): AnyPart => ({
  name,
  needs,
  start: () => name,
  ...extra,
});

function core(): PartServices {
  const logger = pino({ level: 'silent' });
  return {
    settings: loadSettings({}, {}),
    logger,
    metrics: new Metrics({ defaultMetrics: false }),
    health: new HealthRegistry({ logger }),
    serviceId: 'test',
    instanceId: 'test:1',
    version: '0.0.0',
  };
}

describe('parts', () => {
  it('start after the parts they need, in list order otherwise', () => {
    const order = orderParts([part('a', ['c']), part('b'), part('c', ['b']), part('d')]).map((p) => p.name);
    expect(order).toEqual(['b', 'c', 'a', 'd']);
  });

  it('refuse a circle, a missing part and a repeated name, naming them', () => {
    expect(() => orderParts([part('a', ['b']), part('b', ['a'])])).toThrow('a → b → a');
    expect(() => orderParts([part('a', ['x'])])).toThrow('part a needs part x');
    expect(() => orderParts([part('a'), part('a')])).toThrow('part a is listed twice');
  });

  it('get the values of what they need; close in reverse order, a failing close logged and passed', async () => {
    const events: string[] = [];
    const closing = (name: string, fails = false) => ({
      close: (value: unknown) => {
        events.push(`close ${name} (${String(value)})`);
        if (fails) throw new Error(`${name} would not close`);
      },
    });
    const started = await startParts(
      [
        part('store', [], closing('store')),
        part('cache', ['store'], {
          start: (needs: { store: string }) => `cache on ${needs.store}`,
          ...closing('cache', true),
        }),
        part('off', [], { start: () => undefined, ...closing('off') }),
      ],
      core(),
    );
    expect(started.order).toEqual(['store', 'cache', 'off']);
    expect(started.values.get('cache')).toBe('cache on store');
    await started.close();
    // A part that is off (undefined) has nothing to close.
    expect(events).toEqual(['close cache (cache on store)', 'close store (store)']);
  });

  it('a failing start closes what started, in reverse, and throws its own error', async () => {
    const events: string[] = [];
    const failure = new Error('queues failed');
    const parts = ['store', 'redis', 'cache'].map((name) =>
      part(name, [], { close: () => void events.push(`close ${name}`) }),
    );
    const failing = part('queues', ['cache'], {
      start: () => {
        throw failure;
      },
      close: () => void events.push('close queues'),
    });
    await expect(startParts([...parts, failing, part('later')], core())).rejects.toBe(failure);
    expect(events).toEqual(['close cache', 'close redis', 'close store']);
  });

  it("collect every part's migrations for the store, from the whole catalogue, and refuse a name two parts declare", async () => {
    const owning = (name: string, ...migrations: string[]) =>
      part(name, [], {
        migrations: (engine: string) =>
          Promise.resolve(
            Object.fromEntries(migrations.map((m) => [m, { up: () => Promise.resolve(), engine }])),
          ),
      });
    const catalogue = [
      owning('store', '0001_kv'),
      owning('queues', '0003_jobs'),
      part('cache'),
      owning('app', '0100_x'),
    ];
    let given: PartCore['migrations'] | undefined;
    const store = part('store', [], { start: (_needs: object, c: PartCore) => (given = c.migrations) });
    // Only the store starts; it is given the migrations of the whole catalogue.
    await startParts([store], core(), catalogue);
    const all = await given?.('postgres');
    expect(Object.keys(all ?? {})).toEqual(['0001_kv', '0003_jobs', '0100_x']);
    expect(all?.['0003_jobs']).toMatchObject({ engine: 'postgres' });
    await expect(
      partMigrations([...catalogue, owning('billing', '0004_x', '0003_jobs')])('sqlite'),
    ).rejects.toThrow('migration 0003_jobs is declared by two parts: queues and billing');
  });

  it('a part that registers a health check its checks do not list fails to start, and is closed', async () => {
    const events: string[] = [];
    const registering = (checks: string[] | undefined) =>
      part('cache', [], {
        ...(checks === undefined ? {} : { checks }),
        start: (_needs: object, c: PartCore) => {
          c.health.register({ name: 'cache:tier', check: () => ({ status: 'pass' }) });
          return 'cache';
        },
        close: () => void events.push('close cache'),
      });
    await expect(startParts([registering(['cache:other'])], core())).rejects.toThrow(
      'part cache registered the health check cache:tier, which its checks do not list',
    );
    expect(events).toEqual(['close cache']);
    // Listed, or no list at all (a part of the application that declares none): started.
    for (const checks of [['cache:tier'], undefined]) {
      const started = await startParts([registering(checks)], core());
      expect(started.order).toEqual(['cache']);
      await started.close();
    }
  });
});

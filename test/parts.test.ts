import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { HealthRegistry } from '../src/health/index.js';
import { Metrics } from '../src/metrics/index.js';
import { orderParts, startParts, type AnyPart, type PartCore } from '../src/parts/index.js';
import { loadSettings } from '../src/settings/index.js';

const part = (name: string, needs: string[] = [], extra: Partial<AnyPart> = {}): AnyPart => ({
  name,
  needs,
  start: () => name,
  ...extra,
});

function core(): PartCore {
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
});

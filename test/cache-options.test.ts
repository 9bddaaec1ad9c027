// The `cache` option of createBulwark(): the default cache's in-process tier sized to the working set.
import { describe, expect, it } from 'vitest';
import { createBulwark } from '../src/index.js';
import { LogCapture } from './helpers/app.js';
import { rejection } from './helpers/store.js';

const quiet = {
  env: {},
  store: { sqliteFile: ':memory:' },
  defaultMetrics: false,
  metricsHistory: false,
} as const;

describe('createBulwark({ cache })', () => {
  it('bounds the in-process tier to maxEntries, evicting the least recently used', async () => {
    const bulwark = await createBulwark({
      ...quiet,
      logDestination: new LogCapture(),
      cache: { maxEntries: 2 },
    });
    try {
      await bulwark.cache.set('a', 1);
      await bulwark.cache.set('b', 2);
      await bulwark.cache.set('c', 3);
      expect([
        await bulwark.cache.get('a'),
        await bulwark.cache.get('b'),
        await bulwark.cache.get('c'),
      ]).toEqual([undefined, 2, 3]);
    } finally {
      await bulwark.close();
    }
  });

  it('refuses a size that is not a positive integer, naming it', async () => {
    const params = await rejection(
      createBulwark({ ...quiet, logDestination: new LogCapture(), cache: { maxBytes: 0 } }),
      'BWK_ERR_CACHE_OPTIONS',
    );
    expect(params['detail']).toBe('maxBytes must be a positive integer, got 0');
  });
});

import type { Part } from '../parts/index.js';
import { createStore } from './index.js';
import type { Store, StoreOptions } from './types.js';

/** Overrides of the store's location, e.g. `{ sqliteFile: ':memory:' }` for tests. */
export type StorePartOptions = Pick<StoreOptions, 'sqliteFile' | 'schema'>;

/**
 * The store: PostgreSQL with `DATABASE_URL`, else SQLite in `BULWARK_DATA_DIR`; migrated on open,
 * its queries timed in `metrics`, its response time a critical health check.
 */
export function storePart(options: StorePartOptions = {}): Part<'store', Store> {
  return {
    name: 'store',
    needs: [],
    async start(_needs, { settings, metrics, health }) {
      const store = await createStore({
        databaseUrl: settings.databaseUrl,
        dataDir: settings.dataDir,
        onQuery: metrics.observeQuery,
        ...options,
      });
      health.register({
        name: 'store:responseTime',
        componentType: 'datastore',
        critical: true,
        intervalMs: 5000,
        timeoutMs: 1000,
        check: async () => ({
          status: 'pass',
          observedValue: Math.round((await store.ping()) * 1000) / 1000,
          observedUnit: 'ms',
        }),
      });
      return store;
    },
    close: (store) => store.close(),
  };
}

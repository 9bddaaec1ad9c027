import type { Part } from '../parts/index.js';
import { createStore, storeMigrations } from './index.js';
import type { Store, StoreOptions } from './types.js';

/**
 * Overrides of the store's location, e.g. `{ sqliteFile: ':memory:' }` for tests, and its SQLite
 * durability (`synchronous: 'full'` for commits that survive power loss) and who checkpoints its WAL
 * (`checkpoint: 'inline'` to keep SQLite's own checkpoints on the event loop) and its whole-table
 * reads (`readAside: 'inline'` to run them on the app's connection).
 */
export type StorePartOptions = Pick<
  StoreOptions,
  'sqliteFile' | 'schema' | 'synchronous' | 'checkpoint' | 'readAside'
>;

/**
 * The store: PostgreSQL with `DATABASE_URL`, else SQLite in `BULWARK_DATA_DIR`; migrated on open
 * with the migrations of every part (its own tables are kv and audit), its queries timed in
 * `metrics`, its response time a critical health check.
 */
export function storePart(options: StorePartOptions = {}): Part<'store', Store> {
  return {
    name: 'store',
    needs: [],
    checks: ['store:responseTime'],
    // Loaded with the store itself (createStore's default history): no module of its own to defer.
    migrations: (engine) => Promise.resolve(storeMigrations(engine)),
    async start(_needs, { settings, metrics, health, migrations, logger }) {
      const store = await createStore({
        databaseUrl: settings.databaseUrl,
        queryTimeoutMs: settings.storeQueryTimeoutMs,
        dataDir: settings.dataDir,
        onQuery: metrics.observeQuery,
        migrations,
        // The checkpoint worker starts once the WAL passes 1 MiB (an app that writes little never
        // pays its ~9 MiB); leak detection watches RSS and descriptors afresh from that step.
        checkpointer: {
          onError: (err) => logger.warn({ err }, 'store: WAL checkpoints are back on the event loop'),
        },
        onReadAsideError: (err) =>
          logger.warn({ err }, 'store: whole-table reads (queue counts) are back on the event loop'),
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

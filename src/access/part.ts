import type { Part } from '../parts/index.js';
import type { Store } from '../store/types.js';
import type { SqlAccessOptions } from './sql.js';
import type { Access, AccessTables } from './types.js';

/** Overrides for tests: the clock, the purge period, the login limiter. */
export type AccessPartOptions = Pick<SqlAccessOptions, 'now' | 'purgeEveryMs' | 'login'>;

/**
 * Access to the admin API and console: admin keys with a role (`viewer` or `operator`), console
 * sessions and the first start's one-time login token, in the store (migration `0007_access`);
 * `BULWARK_ADMIN_KEY` is the bootstrap operator key beside them. Purges expired sessions every 10 min.
 */
export function accessPart(options: AccessPartOptions = {}): Part<'access', Access, { store: Store }> {
  return {
    name: 'access',
    needs: ['store'],
    checks: [],
    migrations: async (engine) => (await import('./migrations.js')).accessMigrations(engine),
    async start({ store }, { settings, logger }) {
      const { SqlAccess } = await import('./sql.js');
      return new SqlAccess({
        db: store.db.withTables<AccessTables>(),
        audit: store.audit,
        adminKey: settings.adminKey,
        logger,
        ...options,
      });
    },
    close: (access) => access.close(),
  };
}

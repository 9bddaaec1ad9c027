// The access tables (queries in service.ts): migration 0007_access, registered by the access part.
import type { Migration } from 'kysely';
import type { StoreEngine } from '../store/types.js';

/**
 * The access capability's schema history: `0007_access` (admin keys, console sessions, one-time
 * login tokens; each found by the SHA-256 digest of its secret, which is never stored). A released
 * migration is never edited, only followed by a new one; `engine` is the only place where SQL
 * dialects would differ (they do not here: text and bigint on both).
 */
export function accessMigrations(_engine: StoreEngine): Record<string, Migration> {
  return {
    '0007_access': {
      async up(db) {
        await db.schema
          .createTable('bulwark_access_keys')
          .addColumn('digest', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('last_used_at', 'bigint')
          .addColumn('revoked_at', 'bigint')
          .execute();
        await db.schema
          .createTable('bulwark_access_sessions')
          .addColumn('digest', 'text', (c) => c.primaryKey())
          .addColumn('key_name', 'text')
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('csrf_token', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        // The sessions of one actor, oldest first: the per-key cap and the revocation.
        await db.schema
          .createIndex('bulwark_access_sessions_actor_idx')
          .on('bulwark_access_sessions')
          .columns(['actor', 'created_at'])
          .execute();
        await db.schema
          .createIndex('bulwark_access_sessions_expiry_idx')
          .on('bulwark_access_sessions')
          .column('expires_at')
          .execute();
        await db.schema
          .createTable('bulwark_access_tokens')
          .addColumn('digest', 'text', (c) => c.primaryKey())
          .addColumn('key_name', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
      },
      async down(db) {
        await db.schema.dropTable('bulwark_access_tokens').execute();
        await db.schema.dropTable('bulwark_access_sessions').execute();
        await db.schema.dropTable('bulwark_access_keys').execute();
      },
    },
  };
}

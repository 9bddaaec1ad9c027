// The tables of the error tracker (queries in store.ts): migrations 0004_errors and
// 0009_error_trends, registered by the errors part.
import type { Migration } from 'kysely';
import type { StoreEngine } from '../store/types.js';

/**
 * The error tracker's schema history: `0004_errors` (error groups and their sample events),
 * `0009_error_trends` (hourly counts per group, the users-affected sketch, the list's index). A
 * released migration is never edited, only followed by a new one; `engine` is the only place where
 * SQL dialects differ.
 */
export function errorsMigrations(engine: StoreEngine): Record<string, Migration> {
  return {
    '0004_errors': {
      async up(db) {
        const big = engine === 'postgres' ? 'bigint' : 'integer';
        // One row per fingerprint: the group's state and counters.
        await db.schema
          .createTable('bulwark_error_groups')
          .addColumn('fingerprint', 'text', (c) => c.primaryKey())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('message', 'text', (c) => c.notNull())
          .addColumn('culprit', 'text', (c) => c.notNull())
          .addColumn('source', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('count', big, (c) => c.notNull())
          .addColumn('first_seen', 'bigint', (c) => c.notNull())
          .addColumn('last_seen', 'bigint', (c) => c.notNull())
          .addColumn('first_release', 'text', (c) => c.notNull())
          .addColumn('last_release', 'text', (c) => c.notNull())
          .addColumn('resolved_at', 'bigint')
          .addColumn('regressions', 'integer', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('bulwark_error_groups_seen_idx')
          .on('bulwark_error_groups')
          .columns(['state', 'last_seen'])
          .execute();
        // A bounded set of sample events per group.
        await db.schema
          .createTable('bulwark_error_events')
          .addColumn('id', big, (c) =>
            engine === 'postgres'
              ? c.primaryKey().generatedAlwaysAsIdentity()
              : c.primaryKey().autoIncrement(),
          )
          .addColumn('fingerprint', 'text', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('release', 'text', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('bulwark_error_events_group_idx')
          .on('bulwark_error_events')
          .columns(['fingerprint', 'id'])
          .execute();
      },
      async down(db) {
        await db.schema.dropTable('bulwark_error_events').execute();
        await db.schema.dropTable('bulwark_error_groups').execute();
      },
    },
    '0009_error_trends': {
      async up(db) {
        const big = engine === 'postgres' ? 'bigint' : 'integer';
        // Occurrences per group and hour (`hour`: its start, ms): the console's sparkline of the
        // last 24 h, read for a page of groups in one query by the primary key.
        await db.schema
          .createTable('bulwark_error_hours')
          .addColumn('fingerprint', 'text', (c) => c.notNull())
          .addColumn('hour', 'bigint', (c) => c.notNull())
          .addColumn('count', big, (c) => c.notNull())
          .addPrimaryKeyConstraint('bulwark_error_hours_pk', ['fingerprint', 'hour'])
          .execute();
        // Users affected: an estimate, and the HyperLogLog sketch it comes from (base64, src/tracker/users.ts).
        await db.schema
          .alterTable('bulwark_error_groups')
          .addColumn('users', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema.alterTable('bulwark_error_groups').addColumn('users_sketch', 'text').execute();
        // The list of every state, most recently seen first (0004's index leads with the state).
        await db.schema
          .createIndex('bulwark_error_groups_last_seen_idx')
          .on('bulwark_error_groups')
          .columns(['last_seen', 'fingerprint'])
          .execute();
      },
      async down(db) {
        await db.schema.dropIndex('bulwark_error_groups_last_seen_idx').execute();
        await db.schema.alterTable('bulwark_error_groups').dropColumn('users_sketch').execute();
        await db.schema.alterTable('bulwark_error_groups').dropColumn('users').execute();
        await db.schema.dropTable('bulwark_error_hours').execute();
      },
    },
  };
}

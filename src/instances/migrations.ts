// The table of the instances registry (queries in registry.ts): migration 0008_instances, registered
// by the instances part.
import type { Migration } from 'kysely';
import type { StoreEngine } from '../store/types.js';

/**
 * The instances registry's schema history: `0008_instances`, one row per running (or recently
 * stopped) Bulwark instance, upserted by its heartbeat and deleted 10 minutes after it was last seen.
 * A released migration is never edited, only followed by a new one; `engine` is the only place where
 * SQL dialects differ.
 */
export function instancesMigrations(engine: StoreEngine): Record<string, Migration> {
  return {
    '0008_instances': {
      async up(db) {
        const int = engine === 'postgres' ? 'bigint' : 'integer';
        await db.schema
          .createTable('bulwark_instances')
          .addColumn('instance_id', 'text', (c) => c.primaryKey())
          .addColumn('service_id', 'text', (c) => c.notNull())
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('pid', int, (c) => c.notNull())
          .addColumn('version', 'text', (c) => c.notNull())
          .addColumn('started_at', 'bigint', (c) => c.notNull())
          .addColumn('last_seen', 'bigint', (c) => c.notNull())
          .addColumn('stopped_at', 'bigint')
          // JSON text: { "<dependency>": { "mode": "primary" | "fallback", "forced": boolean } }.
          .addColumn('dependencies', 'text', (c) => c.notNull())
          // JSON text under `bulwark supervise` ({ "slot", "generation" }), else null.
          .addColumn('supervisor', 'text')
          .execute();
        // The retention deletes by last_seen; the list reads the newest first.
        await db.schema
          .createIndex('bulwark_instances_seen_idx')
          .on('bulwark_instances')
          .column('last_seen')
          .execute();
        await db.schema
          .createIndex('bulwark_instances_started_idx')
          .on('bulwark_instances')
          .column('started_at')
          .execute();
      },
      async down(db) {
        await db.schema.dropTable('bulwark_instances').execute();
      },
    },
  };
}

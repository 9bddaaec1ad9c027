// The table of the metrics history (queries in history-store.ts): migration 0005_metrics_history,
// registered by the history part.
import type { Migration } from 'kysely';

/**
 * The metrics history's schema history: `0005_metrics_history` (points by series, resolution and
 * bucket; the same on both engines). A released migration is never edited, only followed by a new
 * one.
 */
export function historyMigrations(): Record<string, Migration> {
  return {
    '0005_metrics_history': {
      async up(db) {
        // One row per (series, resolution, bucket): enough to merge buckets when downsampling.
        await db.schema
          .createTable('bulwark_metric_points')
          .addColumn('series', 'text', (c) => c.notNull())
          .addColumn('resolution', 'integer', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('count', 'integer', (c) => c.notNull())
          .addColumn('sum', 'double precision', (c) => c.notNull())
          .addColumn('min', 'double precision', (c) => c.notNull())
          .addColumn('max', 'double precision', (c) => c.notNull())
          .addColumn('last', 'double precision', (c) => c.notNull())
          .addPrimaryKeyConstraint('bulwark_metric_points_pk', ['series', 'resolution', 'at'])
          .execute();
        // Retention and downsampling scan one resolution by time.
        await db.schema
          .createIndex('bulwark_metric_points_age_idx')
          .on('bulwark_metric_points')
          .columns(['resolution', 'at'])
          .execute();
      },
      async down(db) {
        await db.schema.dropTable('bulwark_metric_points').execute();
      },
    },
  };
}

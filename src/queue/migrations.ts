// The tables of the job queue (queries in sql-jobs.ts and effects.ts): migration 0003_jobs, registered
// by the queues part.
import type { Migration } from 'kysely';
import type { StoreEngine } from '../store/types.js';

/**
 * The job queue's schema history: `0003_jobs` (the job table with its claim and lease indexes, and
 * the effect-once markers), `0010_jobs_take_idx` (the spool replay's index). A released migration
 * is never edited, only followed by a new one; `engine` is the only place where SQL dialects differ.
 */
export function queueMigrations(engine: StoreEngine): Record<string, Migration> {
  return {
    '0003_jobs': {
      async up(db) {
        const big = engine === 'postgres' ? 'bigint' : 'integer';
        await db.schema
          .createTable('bulwark_jobs')
          // seq orders jobs of equal priority and run time (FIFO) and is the handle workers use.
          .addColumn('seq', big, (c) =>
            engine === 'postgres'
              ? c.primaryKey().generatedAlwaysAsIdentity()
              : c.primaryKey().autoIncrement(),
          )
          .addColumn('queue', 'text', (c) => c.notNull())
          .addColumn('id', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('priority', 'integer', (c) => c.notNull())
          .addColumn('run_at', 'bigint', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull())
          .addColumn('max_attempts', 'integer', (c) => c.notNull())
          .addColumn('options', 'text')
          .addColumn('data', 'text', (c) => c.notNull())
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'bigint')
          .addColumn('last_error', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('started_at', 'bigint')
          .addColumn('finished_at', 'bigint')
          .addUniqueConstraint('bulwark_jobs_queue_id', ['queue', 'id'])
          .execute();
        // Claiming: the next queued jobs of one queue in priority, run time, insertion order.
        await db.schema
          .createIndex('bulwark_jobs_claim_idx')
          .on('bulwark_jobs')
          .columns(['queue', 'state', 'priority', 'run_at', 'seq'])
          .execute();
        // Recovery: active jobs whose lease has expired.
        await db.schema
          .createIndex('bulwark_jobs_lease_idx')
          .on('bulwark_jobs')
          .columns(['state', 'lease_until'])
          .execute();
        // Effect-once markers: a key recorded in the same transaction as the effect it guards.
        await db.schema
          .createTable('bulwark_effects')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .execute();
      },
      async down(db) {
        await db.schema.dropTable('bulwark_effects').execute();
        await db.schema.dropTable('bulwark_jobs').execute();
      },
    },
    '0010_jobs_take_idx': {
      // The spool replay takes the oldest queued jobs of every queue (`SqlJobs.take`): without an
      // index in that order each step sorted every queued row, ~2 ms for 37 000 jobs on the event
      // loop (~5 ms under load), growing with a long outage's spool. With it: ~0.2 ms at any size.
      async up(db) {
        await db.schema
          .createIndex('bulwark_jobs_take_idx')
          .on('bulwark_jobs')
          .columns(['state', 'seq'])
          .execute();
      },
      async down(db) {
        await db.schema.dropIndex('bulwark_jobs_take_idx').execute();
      },
    },
  };
}

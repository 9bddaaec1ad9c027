// The tables of alerting (rule states in engine.ts, the notification outbox in outbox.ts and
// sender.ts): migration 0006_alerts, registered by the alerts part.
import type { Migration } from 'kysely';
import type { StoreEngine } from '../store/types.js';

/**
 * Alerting's schema history: `0006_alerts` (rule states with a compare-and-set version; the
 * notification outbox with a unique idempotency key per transition and receiver). A released
 * migration is never edited, only followed by a new one; `engine` is the only place where SQL
 * dialects differ.
 */
export function alertsMigrations(engine: StoreEngine): Record<string, Migration> {
  return {
    '0006_alerts': {
      async up(db) {
        const big = engine === 'postgres' ? 'bigint' : 'integer';
        // One row per rule: its state between evaluations; `version` is the compare-and-set token.
        await db.schema
          .createTable('bulwark_alerts')
          .addColumn('rule', 'text', (c) => c.primaryKey())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('since', 'bigint', (c) => c.notNull())
          .addColumn('value', 'double precision')
          .addColumn('transitions', 'integer', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        // Notifications to send: one per transition and receiver (the idempotency key is unique).
        await db.schema
          .createTable('bulwark_alert_outbox')
          .addColumn('id', big, (c) =>
            engine === 'postgres'
              ? c.primaryKey().generatedAlwaysAsIdentity()
              : c.primaryKey().autoIncrement(),
          )
          .addColumn('key', 'text', (c) => c.notNull().unique())
          .addColumn('receiver', 'text', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull())
          .addColumn('next_at', 'bigint', (c) => c.notNull())
          .addColumn('last_error', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('sent_at', 'bigint')
          .execute();
        await db.schema
          .createIndex('bulwark_alert_outbox_due_idx')
          .on('bulwark_alert_outbox')
          .columns(['state', 'next_at'])
          .execute();
      },
      async down(db) {
        await db.schema.dropTable('bulwark_alert_outbox').execute();
        await db.schema.dropTable('bulwark_alerts').execute();
      },
    },
  };
}

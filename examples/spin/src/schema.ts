// Spin's tables, in the store Bulwark opens (SQLite by default, PostgreSQL with DATABASE_URL), and
// their migrations: named after Bulwark's (`1000_…`) so they apply after them in name order.
import { sql, type Generated, type Migration } from 'kysely';
import type { StoreEngine } from 'bulwark';

/** Spin's tables as Kysely sees them (`store.db.withTables<SpinTables>()`). */
export type SpinTables = {
  spin_users: {
    id: string;
    /** SHA-256 (hex) of the user's bearer token; the token itself is never stored. */
    token_digest: string;
    display_name: string;
    gender: string;
    /** The sought genders joined with `+`, in canonical order (`woman+nonbinary`). */
    seeking: string;
    /** Opt-ins: 1 or 0. */
    notify_match: number;
    notify_wait: number;
    email: string | null;
    created_at: number;
  };
  /** Who waits now: a row per waiting user, deleted when matched or gone. */
  spin_queue: {
    user_id: string;
    group_key: string;
    joined_at: number;
  };
  spin_matches: {
    id: string;
    /** The one whose turn it was (joined first). */
    user_a: string;
    user_b: string;
    matched_at: number;
    /** How long each had waited, ms. */
    waited_a_ms: number;
    waited_b_ms: number;
    /** null until voted: `like` or `pass`. */
    vote_a: string | null;
    vote_b: string | null;
    /** `pending` until both voted, then `success` (both like) or `declined`. */
    outcome: string;
    /** 1 once its e-mail notices were queued (notify.ts); 0 until then (the default, 1, is for rows made otherwise). */
    noticed: Generated<number>;
  };
  /**
   * What happened, in order: the feed every instance reads to tell its connected users (per-user
   * rows, `user_id` set) and to keep its wait statistics (`joined`, `left`, `matched`).
   */
  spin_events: {
    id: Generated<number>;
    user_id: string | null;
    type: string;
    data: string;
    at: number;
  };
  /** Answers of idempotent requests, by user and `Idempotency-Key`, kept 24 h. */
  spin_idempotency: {
    user_id: string;
    key: string;
    /** The request's fingerprint: the same key with another request is refused. */
    fingerprint: string;
    status: number;
    body: string;
    created_at: number;
  };
};

/** Spin's schema history. A released migration is never edited, only followed by a new one. */
export function spinMigrations(engine: StoreEngine): Record<string, Migration> {
  return {
    '1000_spin': {
      async up(db) {
        await db.schema
          .createTable('spin_users')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('token_digest', 'text', (c) => c.notNull().unique())
          .addColumn('display_name', 'text', (c) => c.notNull())
          .addColumn('gender', 'text', (c) => c.notNull())
          .addColumn('seeking', 'text', (c) => c.notNull())
          .addColumn('notify_match', 'integer', (c) => c.notNull())
          .addColumn('notify_wait', 'integer', (c) => c.notNull())
          .addColumn('email', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('spin_queue')
          .addColumn('user_id', 'text', (c) => c.primaryKey())
          .addColumn('group_key', 'text', (c) => c.notNull())
          .addColumn('joined_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('spin_queue_order_idx')
          .on('spin_queue')
          .columns(['joined_at', 'user_id'])
          .execute();
        await db.schema
          .createTable('spin_matches')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('user_a', 'text', (c) => c.notNull())
          .addColumn('user_b', 'text', (c) => c.notNull())
          .addColumn('matched_at', 'bigint', (c) => c.notNull())
          .addColumn('waited_a_ms', 'bigint', (c) => c.notNull())
          .addColumn('waited_b_ms', 'bigint', (c) => c.notNull())
          .addColumn('vote_a', 'text')
          .addColumn('vote_b', 'text')
          .addColumn('outcome', 'text', (c) => c.notNull())
          .execute();
        for (const side of ['a', 'b'])
          await db.schema
            .createIndex(`spin_matches_user_${side}_idx`)
            .on('spin_matches')
            .columns([`user_${side}`, 'matched_at'])
            .execute();
        await db.schema
          .createTable('spin_events')
          .addColumn('id', engine === 'postgres' ? 'bigint' : 'integer', (c) =>
            engine === 'postgres'
              ? c.primaryKey().generatedAlwaysAsIdentity()
              : c.primaryKey().autoIncrement(),
          )
          .addColumn('user_id', 'text')
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('spin_events_user_idx')
          .on('spin_events')
          .columns(['user_id', 'id'])
          .execute();
        await db.schema.createIndex('spin_events_at_idx').on('spin_events').column('at').execute();
        await db.schema
          .createTable('spin_idempotency')
          .addColumn('user_id', 'text', (c) => c.notNull())
          .addColumn('key', 'text', (c) => c.notNull())
          .addColumn('fingerprint', 'text', (c) => c.notNull())
          .addColumn('status', 'integer', (c) => c.notNull())
          .addColumn('body', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('spin_idempotency_pk', ['user_id', 'key'])
          .execute();
        await db.schema
          .createIndex('spin_idempotency_age_idx')
          .on('spin_idempotency')
          .column('created_at')
          .execute();
      },
      async down(db) {
        for (const table of ['spin_idempotency', 'spin_events', 'spin_matches', 'spin_queue', 'spin_users'])
          await db.schema.dropTable(table).execute();
      },
    },
    // A joiner's place in its group counts those of the group who joined before: by index, not by
    // a scan of everyone waiting (10,000 waiting made each join scan them all).
    '1002_spin_queue_group': {
      async up(db) {
        await db.schema
          .createIndex('spin_queue_group_idx')
          .on('spin_queue')
          .columns(['group_key', 'joined_at', 'user_id'])
          .execute();
      },
      async down(db) {
        await db.schema.dropIndex('spin_queue_group_idx').execute();
      },
    },
    // The queue statistics read the matches of a window by time (stats-windows.ts).
    '1003_spin_matches_at': {
      async up(db) {
        await db.schema.createIndex('spin_matches_at_idx').on('spin_matches').column('matched_at').execute();
      },
      async down(db) {
        await db.schema.dropIndex('spin_matches_at_idx').execute();
      },
    },
    // Whether a match's e-mail notices were queued: a match made just before a crash, whose notices
    // were not, is found by the partial index (only such rows are in it) and queued after all.
    // Matches made before this migration count as noticed.
    '1004_spin_match_noticed': {
      async up(db) {
        await db.schema
          .alterTable('spin_matches')
          .addColumn('noticed', 'integer', (c) => c.notNull().defaultTo(1))
          .execute();
        await db.schema
          .createIndex('spin_matches_unnoticed_idx')
          .on('spin_matches')
          .column('matched_at')
          .where(sql.ref('noticed'), '=', sql.lit(0))
          .execute();
      },
      async down(db) {
        await db.schema.dropIndex('spin_matches_unnoticed_idx').execute();
        await db.schema.alterTable('spin_matches').dropColumn('noticed').execute();
      },
    },
  };
}

import type { Kysely, Selectable, Transaction } from 'kysely';
import type { StoreTables } from '../store/types.js';

/** One notification waiting in (or gone from) the outbox. */
export interface OutboxEntry {
  id: number;
  key: string;
  receiver: string;
  payload: string;
  /** `silenced` / `inhibited`: not delivered on purpose (a silence, maintenance window or inhibition). */
  state: 'pending' | 'sent' | 'dead' | 'silenced' | 'inhibited';
  attempts: number;
  nextAt: number;
  lastError: string | undefined;
  createdAt: number;
  sentAt: number | undefined;
}

type Row = Selectable<StoreTables['bulwark_alert_outbox']>;

function toEntry(row: Row): OutboxEntry {
  return {
    id: Number(row.id),
    key: row.key,
    receiver: row.receiver,
    payload: row.payload,
    state: row.state as OutboxEntry['state'],
    attempts: Number(row.attempts),
    nextAt: Number(row.next_at),
    lastError: row.last_error ?? undefined,
    createdAt: Number(row.created_at),
    sentAt: row.sent_at === null ? undefined : Number(row.sent_at),
  };
}

/**
 * The durable outbox of alert notifications. A notification is added in the same transaction as
 * the alert transition it announces, under a unique idempotency key (`<rule>:<transition>:<receiver>`),
 * so a transition is enqueued once per receiver even if two evaluators race; it leaves the outbox
 * only when the receiver accepted it (`sent`) or its attempts ran out (`dead`).
 */
export class AlertOutbox {
  readonly #db: Kysely<StoreTables>;

  constructor(db: Kysely<StoreTables>) {
    this.#db = db;
  }

  /** Adds notifications inside `trx`; a key already present is left as it is. */
  static async enqueue(
    trx: Transaction<StoreTables>,
    entries: { key: string; receiver: string; payload: string }[],
    now: number,
  ): Promise<void> {
    if (entries.length === 0) return;
    await trx
      .insertInto('bulwark_alert_outbox')
      .values(
        entries.map((e) => ({
          key: e.key,
          receiver: e.receiver,
          payload: e.payload,
          state: 'pending',
          attempts: 0,
          next_at: now,
          last_error: null,
          created_at: now,
          sent_at: null,
        })),
      )
      .onConflict((oc) => oc.column('key').doNothing())
      .execute();
  }

  /** Pending notifications due at `now`, oldest first. */
  async due(now: number, limit: number): Promise<OutboxEntry[]> {
    const rows = await this.#db
      .selectFrom('bulwark_alert_outbox')
      .selectAll()
      .where('state', '=', 'pending')
      .where('next_at', '<=', now)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toEntry);
  }

  async markSent(id: number, now: number): Promise<void> {
    await this.#db
      .updateTable('bulwark_alert_outbox')
      .set({ state: 'sent', sent_at: now, last_error: null })
      .where('id', '=', id)
      .where('state', '=', 'pending')
      .execute();
  }

  /** Records a failed attempt: retried at `nextAt`, or `dead` when `dead`. */
  async markFailed(
    id: number,
    attempts: number,
    nextAt: number,
    error: string,
    dead: boolean,
  ): Promise<void> {
    await this.#db
      .updateTable('bulwark_alert_outbox')
      .set({ attempts, next_at: nextAt, last_error: error.slice(0, 1_000), state: dead ? 'dead' : 'pending' })
      .where('id', '=', id)
      .where('state', '=', 'pending')
      .execute();
  }

  /** Marks a notification not delivered on purpose, with why. */
  async suppress(id: number, state: 'silenced' | 'inhibited', why: string): Promise<void> {
    await this.#db
      .updateTable('bulwark_alert_outbox')
      .set({ state, last_error: why.slice(0, 1_000) })
      .where('id', '=', id)
      .where('state', '=', 'pending')
      .execute();
  }

  /** The state of the notification with `key`, if there is one. */
  async stateOf(key: string): Promise<OutboxEntry['state'] | undefined> {
    const row = await this.#db
      .selectFrom('bulwark_alert_outbox')
      .select('state')
      .where('key', '=', key)
      .executeTakeFirst();
    return row?.state as OutboxEntry['state'] | undefined;
  }

  /** Newest first, optionally of one state, optionally only those older than the id `before` (paging). */
  async list(
    opts: { state?: OutboxEntry['state']; limit?: number; before?: number } = {},
  ): Promise<OutboxEntry[]> {
    let query = this.#db.selectFrom('bulwark_alert_outbox').selectAll();
    if (opts.state !== undefined) query = query.where('state', '=', opts.state);
    if (opts.before !== undefined) query = query.where('id', '<', opts.before);
    const rows = await query
      .orderBy('id', 'desc')
      .limit(opts.limit ?? 100)
      .execute();
    return rows.map(toEntry);
  }

  /** One notification; undefined when there is none with that id. */
  async get(id: number): Promise<OutboxEntry | undefined> {
    const row = await this.#db
      .selectFrom('bulwark_alert_outbox')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row === undefined ? undefined : toEntry(row);
  }

  /** Deletes sent and dead notifications created before `before`. */
  async prune(before: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('bulwark_alert_outbox')
      .where('state', '!=', 'pending')
      .where('created_at', '<', before)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

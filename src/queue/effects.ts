import type { Transaction } from 'kysely';
import { guard } from '../store/errors.js';
import type { Store, StoreTables } from '../store/types.js';
import type { Job } from './types.js';

/** What {@link effectOnce} did. */
export type EffectResult<T> = { applied: true; value: T } | { applied: false };

/**
 * Runs `effect` at most once per `key`, ever: the key is recorded in `bulwark_effects` in the same
 * transaction as the effect, so a retried or redelivered job whose effect already committed skips
 * it, and an effect that did not commit (crash, error) leaves no record and runs again. The effect
 * must write through `trx` (the store's database) for this to hold; effects elsewhere (an e-mail, an
 * HTTP call) need the receiver's own idempotency key.
 */
export function effectOnce<T>(
  store: Store,
  key: string,
  effect: (trx: Transaction<StoreTables>) => Promise<T>,
  now: () => number = Date.now,
): Promise<EffectResult<T>> {
  return guard(store.engine, 'effects.once', () =>
    store.db.transaction().execute(async (trx) => {
      const marked = await trx
        .insertInto('bulwark_effects')
        .values({ key, at: now() })
        .onConflict((oc) => oc.column('key').doNothing())
        .executeTakeFirst();
      if ((marked.numInsertedOrUpdatedRows ?? 0n) === 0n) return { applied: false as const };
      return { applied: true as const, value: await effect(trx) };
    }),
  );
}

/** The effect-once key of a job: its queue and id. */
export function jobEffectKey(job: Pick<Job, 'queue' | 'id'>): string {
  return `job:${job.queue}:${job.id}`;
}

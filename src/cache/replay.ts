import { paced, type Pacer, type ReplayPacing } from '../failover/index.js';
import type { InvalidationBus } from './bus.js';
import type { JournalRecord } from './journal.js';
import type { CacheStore } from './types.js';

/**
 * Journal records applied in one step of a replay: their writes in flight together, then one
 * announcement naming all their keys. One record at a time (a read, a write and an announcement,
 * each awaited) made ~60 000 round trips of a 20 000-key journal, every announcement also parsed by
 * every instance subscribed (issue 18).
 */
export const JOURNAL_STEP = 50;

type KeyRecord = Exclude<JournalRecord, { op: 'deleteTag' }>;

/** Where a replay plan goes: the shared tier, the bus announcing its changes, the cache's clock. */
export interface ReplayTarget {
  store: CacheStore;
  bus?: InvalidationBus | undefined;
  now: () => number;
  pacing?: ReplayPacing | undefined;
}

/**
 * Applies a replay plan (`planReplay`: tag deletes, key deletes, then sets) to the shared tier in
 * steps: a tag delete alone, key deletes or sets up to {@link JOURNAL_STEP} at a time, never mixing
 * the two (a key deleted and set again is deleted first). After each step it rests like the queue
 * spool's replay (`Pacer`): it runs right after a failback, on the event loop and the Redis
 * connection the app's requests use. Rejects at the first step the shared tier fails; everything
 * applied is idempotent (versions decide), so the caller keeps the whole journal for the next try.
 */
export function applyPlan(plan: readonly JournalRecord[], target: ReplayTarget): Promise<void> {
  return paced(target.pacing, (pacer) => applySteps(plan, target, pacer));
}

async function applySteps(plan: readonly JournalRecord[], target: ReplayTarget, pacer: Pacer): Promise<void> {
  let i = 0;
  while (i < plan.length) {
    pacer.start();
    const first = plan[i]!;
    if (first.op === 'deleteTag') {
      await target.store.deleteTag(first.tag);
      await target.bus?.publish({ tag: first.tag });
      i += 1;
    } else {
      const step: KeyRecord[] = [];
      for (; i < plan.length && step.length < JOURNAL_STEP; i += 1) {
        const record = plan[i]!;
        if (record.op !== first.op) break;
        step.push(record);
      }
      await Promise.all(step.map((record) => applyOne(target, record)));
      // Other instances may have filled their L1 from the shared tier before this replay.
      await target.bus?.publish({ keys: step.map((record) => record.key) });
    }
    if (i < plan.length) await pacer.rest();
  }
}

async function applyOne({ store, now }: ReplayTarget, record: KeyRecord): Promise<void> {
  if (record.op === 'delete') {
    await store.delete([record.key]);
    return;
  }
  // Writes made after the failback are newer than anything journaled: never overwrite them.
  // (Read-then-write: a write landing between the two can still lose; the window is one round trip.)
  const current = await store.get(record.key);
  if (current !== undefined && current.version >= record.entry.version) return;
  // A journaled write that has expired since still replaced the older value the shared tier
  // holds: remove that value rather than skip the record, or it would be served again.
  if (record.entry.staleUntil <= now()) await store.delete([record.key]);
  else await store.set(record.key, record.entry);
}

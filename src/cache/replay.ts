import { paced, type Pacer, type ReplayPacing } from '../failover/index.js';
import type { InvalidationBus } from './bus.js';
import {
  deletePlan,
  replayRules,
  setPlan,
  type CacheJournal,
  type DeleteRecord,
  type JournalRecord,
} from './journal.js';
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

/** What a replay did: the records it read and forgot, how many it applied, its newest delete's version. */
export interface ReplayOutcome {
  records: number;
  applied: number;
  deletedUpTo: number;
}

/**
 * Replays `journal` into the shared tier. The deletes first (read whole: every instance's fence
 * holds them anyway): tag deletes, then one per key. Then the sets a step at a time: read
 * {@link JOURNAL_STEP} of them, oldest first, apply the newest of each key that no delete outdates,
 * announce their keys, forget them. Holding every record of a long outage through a replay of
 * seconds (~17 000 in issue 18's failover benchmark) outlived the young generation and grew V8's
 * old one ~5 MB/s after each failback; a step's records die young.
 *
 * After each step it rests like the queue spool's replay (`Pacer`): it runs right after a failback,
 * on the event loop and the Redis connection the app's requests use. Rejects at the first step the
 * shared tier fails. The deletes are forgotten last, so the sets still journaled keep the deletes
 * that decide them and the next failback goes on from there (what was applied is idempotent:
 * versions decide; a delete applied again may only cost a miss).
 */
export function replayJournal(journal: CacheJournal, target: ReplayTarget): Promise<ReplayOutcome> {
  return paced(target.pacing, async (pacer) => {
    const deletes = await journal.pendingDeletes(pacer);
    const rules = replayRules(deletes.map((p) => p.record));
    const plan = deletePlan(rules);
    await applyDeletes(plan, target, pacer);
    const outcome: ReplayOutcome = {
      records: deletes.length,
      applied: plan.length,
      deletedUpTo: deletes.reduce((max, p) => Math.max(max, p.record.version), 0),
    };
    let after: string | undefined;
    let rest = plan.length > 0; // after a step that did something, before the next
    for (;;) {
      if (rest) await pacer.rest();
      rest = true;
      pacer.start();
      const page = await journal.pendingSets(after, JOURNAL_STEP);
      if (page.length === 0) break;
      const sets = setPlan(
        page.map((p) => p.record),
        rules,
      );
      await applyStep(sets, target);
      await journal.remove(page.map((p) => p.id));
      outcome.records += page.length;
      outcome.applied += sets.length;
      if (page.length < JOURNAL_STEP) break;
      after = page[page.length - 1]?.id;
    }
    await journal.remove(deletes.map((p) => p.id));
    return outcome;
  });
}

/**
 * Applies deletes in steps: a tag delete alone, key deletes up to {@link JOURNAL_STEP} at a time,
 * resting between steps.
 */
async function applyDeletes(
  plan: readonly DeleteRecord[],
  target: ReplayTarget,
  pacer: Pacer,
): Promise<void> {
  let i = 0;
  while (i < plan.length) {
    if (i > 0) await pacer.rest();
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
        if (record.op !== 'delete') break;
        step.push(record);
      }
      await applyStep(step, target);
    }
  }
}

/** Applies key deletes or sets together, then announces their keys in one message. */
async function applyStep(step: readonly KeyRecord[], target: ReplayTarget): Promise<void> {
  if (step.length === 0) return;
  await Promise.all(step.map((record) => applyOne(target, record)));
  // Other instances may have filled their L1 from the shared tier before this replay.
  await target.bus?.publish({ keys: step.map((record) => record.key) });
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

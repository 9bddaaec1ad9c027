import { paced, type Pacer, type ReplayPacing } from '../failover/pacing.js';
import type { KvRepository } from '../store/types.js';
import type { CacheEntry } from './types.js';

const PAGE = 500;
/**
 * Applied records forgotten per statement, with a turn of the event loop between statements. One
 * DELETE per record held the loop ~60 µs each, ~30 ms for a page of 500 (measured, issue 18): the
 * requests served meanwhile waited for it.
 */
const REMOVE_CHUNK = 100;

// One sequence for every journal of the process: two caches of one name sharing a store (two
// Bulwark instances in one process) can journal records of the same version, and a per-journal
// sequence would give both the same key, the second write replacing the first.
let sequence = 0;

/** Lets pending I/O callbacks run (the store driver may be synchronous). */
export function yieldToIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** One write that could not reach the shared tier. */
export type JournalRecord =
  | { op: 'set'; key: string; version: number; entry: CacheEntry }
  | { op: 'delete'; key: string; version: number }
  | { op: 'deleteTag'; tag: string; version: number };
/** A journaled write of a value. */
export type SetRecord = Extract<JournalRecord, { op: 'set' }>;
/** A journaled delete of a key or of a tag. */
export type DeleteRecord = Exclude<JournalRecord, { op: 'set' }>;
/** A record as the journal keeps it: `id` names it to {@link CacheJournal.remove}. */
export interface Pending<R extends JournalRecord = JournalRecord> {
  id: string;
  record: R;
}

/**
 * Durable journal of cache writes made while the shared tier (Redis) is unreachable, kept in the
 * store so it survives a crash. Replayed on failback: deletes first, then for each key only the
 * newest set, and a set older than a delete of the same key is dropped.
 */
export class CacheJournal {
  readonly #kv: KvRepository;
  readonly #namespace: string;
  #batch: { key: string; value: JournalRecord; resolve: () => void; reject: (error: unknown) => void }[] = [];

  constructor(kv: KvRepository, cacheName: string) {
    this.#kv = kv;
    this.#namespace = `bulwark.cache.journal:${cacheName}`;
  }

  /**
   * Appends a record; resolves once it is durable. Records appended in the same turn of the event
   * loop are written together in one statement (group commit): during an outage every cache write
   * lands here, and one INSERT per record measured ~64 µs of a request's time.
   */
  append(record: JournalRecord): Promise<void> {
    sequence = (sequence + 1) % 1_000_000;
    // Deletes under `d:` (read on their own by every instance's fence), sets under `s:`; within
    // each, keys sort by version, then by a per-process sequence for records of the same µs.
    const key = `${record.op === 'set' ? 's' : 'd'}:${String(record.version).padStart(20, '0')}-${String(sequence).padStart(6, '0')}-${process.pid}`;
    return new Promise((resolve, reject) => {
      this.#batch.push({ key, value: record, resolve, reject });
      if (this.#batch.length === 1) setImmediate(() => void this.#commit());
    });
  }

  async #commit(): Promise<void> {
    const batch = this.#batch;
    this.#batch = [];
    try {
      await this.#kv.putMany(
        this.#namespace,
        batch.map(({ key, value }) => ({ key, value })),
      );
      for (const waiter of batch) waiter.resolve();
    } catch (error) {
      for (const waiter of batch) waiter.reject(error);
    }
  }

  /**
   * Every pending record, read in pages of `PAGE` with a turn of the event loop between pages, so
   * a long outage's journal does not stall the requests being served meanwhile. With `pacing` (the
   * replay's), each page is a step that rests like the replay's: right after a failback, reading
   * and parsing every record of a five-second outage at once (~17 000 in issue 18's failover
   * benchmark) took ~0.3 s, holding the event loop up to ~25 ms at a time, as Redis came back.
   */
  pending(pacing?: ReplayPacing): Promise<Pending[]> {
    return pacing === undefined
      ? this.#list(undefined)
      : paced(pacing, (pacer) => this.#list(undefined, pacer));
  }

  /** The pending deletes of every instance sharing the store, read in pages paced by `pacer`. */
  async pendingDeletes(pacer?: Pacer): Promise<Pending<DeleteRecord>[]> {
    return (await this.#list('d:', pacer)).filter((p): p is Pending<DeleteRecord> => p.record.op !== 'set');
  }

  /**
   * Up to `limit` pending sets of every instance sharing the store, oldest version first, after the
   * one named `after` (the last id of the previous page): the replay reads, applies and forgets a
   * page at a time, so it never holds a long outage's records at once.
   */
  async pendingSets(after: string | undefined, limit: number): Promise<Pending<SetRecord>[]> {
    const page = await this.#kv.list<JournalRecord>(this.#namespace, {
      prefix: 's:',
      limit,
      ...(after === undefined ? {} : { after }),
    });
    const sets: Pending<SetRecord>[] = [];
    for (const { key, value } of page) if (value.op === 'set') sets.push({ id: key, record: value });
    return sets;
  }

  /** How many records wait to be replayed, of every instance sharing the store (one COUNT). */
  count(): Promise<number> {
    return this.#kv.count(this.#namespace);
  }

  /** The pending deletes and tag deletes of every instance sharing the store. */
  async deletes(): Promise<DeleteRecord[]> {
    return (await this.pendingDeletes()).map((p) => p.record);
  }

  async #list(prefix: string | undefined, pacer?: Pacer): Promise<Pending[]> {
    const all: Pending[] = [];
    let after: string | undefined;
    for (;;) {
      pacer?.start();
      const page = await this.#kv.list<JournalRecord>(this.#namespace, {
        limit: PAGE,
        ...(prefix === undefined ? {} : { prefix }),
        ...(after === undefined ? {} : { after }),
      });
      for (const e of page) all.push({ id: e.key, record: e.value });
      if (page.length < PAGE) return all;
      after = page[page.length - 1]?.key;
      await (pacer === undefined ? yieldToIo() : pacer.rest());
    }
  }

  /**
   * Forgets records once they have been applied: one statement per {@link REMOVE_CHUNK} records, a
   * turn of the event loop (pending I/O first) after each.
   */
  async remove(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += REMOVE_CHUNK) {
      await this.#kv.deleteMany(this.#namespace, ids.slice(i, i + REMOVE_CHUNK));
      await yieldToIo();
    }
  }
}

/** What a journal's deletes decide about its sets: the newest delete of each key, the tag deletes. */
export interface ReplayRules {
  deletes: Map<string, number>;
  tagDeletes: Extract<JournalRecord, { op: 'deleteTag' }>[];
}

/** The rules the deletes among `records` make (sets among them are ignored). */
export function replayRules(records: readonly JournalRecord[]): ReplayRules {
  const rules: ReplayRules = { deletes: new Map(), tagDeletes: [] };
  for (const record of records) {
    if (record.op === 'deleteTag') rules.tagDeletes.push(record);
    else if (record.op === 'delete')
      rules.deletes.set(record.key, Math.max(record.version, rules.deletes.get(record.key) ?? 0));
  }
  return rules;
}

/** The deletes a replay applies first: every tag delete, then one delete per key (its newest). */
export function deletePlan(rules: ReplayRules): DeleteRecord[] {
  const plan: DeleteRecord[] = [...rules.tagDeletes];
  for (const [key, version] of rules.deletes) plan.push({ op: 'delete', key, version });
  return plan;
}

/**
 * Of the sets among `records`, the newest of each key, unless a delete of the key or of one of its
 * tags is newer. Applied to a journal a page at a time, a key set again in a later page is written
 * twice, the newer last; the shared tier keeps the newest either way (versions decide).
 */
export function setPlan(records: readonly JournalRecord[], rules: ReplayRules): SetRecord[] {
  const sets = new Map<string, SetRecord>();
  for (const record of records) {
    if (record.op !== 'set') continue;
    const previous = sets.get(record.key);
    if (previous === undefined || previous.version < record.version) sets.set(record.key, record);
  }
  const plan: SetRecord[] = [];
  for (const [key, set] of sets) {
    const deletedAt = rules.deletes.get(key);
    if (deletedAt !== undefined && set.version < deletedAt) continue;
    // A set made before a delete of one of its tags is gone too.
    const tags = set.entry.tags ?? [];
    if (rules.tagDeletes.some((t) => t.version > set.version && tags.includes(t.tag))) continue;
    plan.push(set);
  }
  return plan;
}

/**
 * The records a replay of the whole of `records` at once applies, in order: tag deletes, key
 * deletes, then the newest surviving sets (the replay itself goes a step at a time: `replayJournal`).
 */
export function planReplay(records: JournalRecord[]): JournalRecord[] {
  const rules = replayRules(records);
  return [...deletePlan(rules), ...setPlan(records, rules)];
}

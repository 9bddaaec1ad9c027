import type { DeleteRecord } from './journal.js';
import type { CacheEntry } from './types.js';

interface Versions {
  keys: Map<string, number>;
  tags: Map<string, number>;
}

function note(into: Versions, record: DeleteRecord): void {
  const map = record.op === 'delete' ? into.keys : into.tags;
  const name = record.op === 'delete' ? record.key : record.tag;
  map.set(name, Math.max(record.version, map.get(name) ?? 0));
}

/**
 * Deletes that have not reached the shared tier yet (journaled during an outage, not yet replayed),
 * by version: an entry written before a pending delete of its key or of one of its tags is gone,
 * wherever it is read from (this instance's L1, or a shared tier that still holds it). An entry
 * written after the delete is not affected.
 *
 * Two sources: this instance's own deletes, known at once, and every instance's pending deletes read
 * from the journal in the shared store (polled), so an instance also honours deletes made elsewhere.
 */
export class DeleteFence {
  readonly #local: Versions = { keys: new Map(), tags: new Map() };
  #shared: Versions = { keys: new Map(), tags: new Map() };

  /** True when nothing is fenced (the common case: a single map-size check on the read path). */
  get empty(): boolean {
    return (
      this.#local.keys.size === 0 &&
      this.#local.tags.size === 0 &&
      this.#shared.keys.size === 0 &&
      this.#shared.tags.size === 0
    );
  }

  /** Records a delete this instance journaled. */
  add(record: DeleteRecord): void {
    note(this.#local, record);
  }

  /** Replaces what is known of every instance's pending deletes (the journal as last read). */
  replaceShared(records: DeleteRecord[]): void {
    const next: Versions = { keys: new Map(), tags: new Map() };
    for (const record of records) note(next, record);
    this.#shared = next;
  }

  /** Forgets this instance's deletes up to `version` once a replay has applied them. */
  forget(version: number): void {
    for (const map of [this.#local.keys, this.#local.tags])
      for (const [name, v] of map) if (v <= version) map.delete(name);
  }

  /** True when `entry` (stored under `key`) was written before a pending delete of it. */
  hides(key: string, entry: CacheEntry): boolean {
    for (const versions of [this.#local, this.#shared]) {
      if ((versions.keys.get(key) ?? 0) > entry.version) return true;
      if (versions.tags.size > 0 && entry.tags !== undefined)
        for (const tag of entry.tags) if ((versions.tags.get(tag) ?? 0) > entry.version) return true;
    }
    return false;
  }
}

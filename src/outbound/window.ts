/**
 * Counts of named events over a sliding time window, kept in a ring of `slots` equal slots: an
 * event is forgotten between `windowMs − windowMs/slots` and `windowMs` after it happened. Memory
 * is fixed (slots × counters) whatever the traffic. Time comes from `now()` (milliseconds), so
 * tests drive it.
 */
export class SlidingCounts<K extends string> {
  readonly #keys: readonly K[];
  readonly #slotMs: number;
  readonly #now: () => number;
  /** Per slot: the slot's index in time (`floor(t / slotMs)`) and one count per key. */
  readonly #slots: { epoch: number; counts: number[] }[];

  constructor(keys: readonly K[], windowMs: number, slots: number, now: () => number) {
    this.#keys = keys;
    this.#slotMs = Math.max(1, windowMs / slots);
    this.#now = now;
    this.#slots = Array.from({ length: slots }, () => ({ epoch: -1, counts: keys.map(() => 0) }));
  }

  /** Adds `n` (default 1) to `key` now. */
  add(key: K, n = 1): void {
    const epoch = Math.floor(this.#now() / this.#slotMs);
    const slot = this.#slots[epoch % this.#slots.length];
    if (slot === undefined) return;
    if (slot.epoch !== epoch) {
      // The slot last held an epoch that has left the window: start it afresh.
      slot.epoch = epoch;
      slot.counts.fill(0);
    }
    const index = this.#keys.indexOf(key);
    slot.counts[index] = (slot.counts[index] ?? 0) + n;
  }

  /** The count of `key` over the window ending now. */
  sum(key: K): number {
    const epoch = Math.floor(this.#now() / this.#slotMs);
    const index = this.#keys.indexOf(key);
    let total = 0;
    for (const slot of this.#slots)
      if (slot.epoch > epoch - this.#slots.length && slot.epoch <= epoch) total += slot.counts[index] ?? 0;
    return total;
  }
}

// The recent wait and run times behind the admin API's queue list: a small ring of the latest
// durations per queue and kind, fed by QueueMetrics as both drivers' workers start and finish
// attempts. Percentiles are exact over what the ring holds, not estimated from histogram buckets.
import type { DurationStats, QueueTimings } from './types.js';

/** How far back the recent wait and run times look (5 minutes). */
export const TIMINGS_WINDOW_MS = 300_000;

/** How many of the latest durations of one queue and kind are kept. */
export const TIMINGS_KEPT = 1000;

/**
 * The latest `capacity` durations of one kind, each with when it was recorded, in a ring that grows
 * (from 16) to its capacity and then overwrites the oldest: a queue that runs few jobs costs little
 * memory, and a busy one allocates nothing per job.
 */
export class RecentDurations {
  readonly #capacity: number;
  #at = new Float64Array(16);
  #ms = new Float64Array(16);
  #next = 0;
  #size = 0;

  constructor(capacity = TIMINGS_KEPT) {
    this.#capacity = capacity;
  }

  /** Records a duration of `ms` milliseconds that ended at `at` (ms since the epoch). */
  record(at: number, ms: number): void {
    if (this.#size === this.#at.length && this.#size < this.#capacity) {
      // Full and still allowed to grow: the ring is in order (next wrapped to 0), so copy it as is.
      const length = Math.min(this.#capacity, this.#size * 2);
      const at2 = new Float64Array(length);
      const ms2 = new Float64Array(length);
      at2.set(this.#at);
      ms2.set(this.#ms);
      this.#at = at2;
      this.#ms = ms2;
      this.#next = this.#size;
    }
    this.#at[this.#next] = at;
    this.#ms[this.#next] = Math.max(0, ms);
    this.#next = (this.#next + 1) % this.#at.length;
    if (this.#size < this.#at.length) this.#size += 1;
  }

  /** p50 and p95 (nearest rank) of the durations recorded at or after `since`. */
  stats(since: number): DurationStats {
    const values: number[] = [];
    for (let i = 0; i < this.#size; i++) if ((this.#at[i] ?? 0) >= since) values.push(this.#ms[i] ?? 0);
    values.sort((a, b) => a - b);
    return { count: values.length, p50: rank(values, 0.5), p95: rank(values, 0.95) };
  }
}

/** The timings of a queue nothing was recorded for. */
export function emptyTimings(): QueueTimings {
  const none = { count: 0, p50: null, p95: null };
  return { windowMs: TIMINGS_WINDOW_MS, wait: { ...none }, run: { ...none } };
}

function rank(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? null;
}

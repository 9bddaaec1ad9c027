/**
 * One wait group's recent history in fixed memory: counters per time bucket in a ring that is
 * reused as time moves on, read back with recent buckets weighing more (exponential smoothing).
 */

/** What is counted per bucket. */
export const COUNTERS = [
  'arrivals',
  /** Every match of a member. */
  'matches',
  /** Matches of members who had to wait for their partner (longer than one matcher round). */
  'served',
  'leaves',
  /** Sum of the waits (ms) of members who left the queue, matched or not: their time at risk of leaving. */
  'waited',
  /** Time (ms) during which at least one member was waiting. */
  'busy',
] as const;

export type Counter = (typeof COUNTERS)[number];

/** Weighted sums of every counter over the window, plus the weighted observed time and raw counts. */
export type HistorySums = Record<Counter, number> & {
  /** Weighted time observed (ms). */
  time: number;
  /** Σ weight² × served: with `served`, the effective sample size of the weighted service rate. */
  servedSquared: number;
  /** Unweighted counts in the window. */
  matchCount: number;
  servedCount: number;
  arrivalCount: number;
};

/** Bucketed counters of one group (see the module comment). Times in ms. */
export class GroupHistory {
  readonly #bucketMs: number;
  readonly #epoch: Float64Array;
  readonly #counts: Record<Counter, Float64Array>;
  /** Members waiting now, as far as the events seen tell, and since when that number holds. */
  #waiting = 0;
  #changedAt = -Infinity;
  lastMatchAt: number | null = null;

  constructor(buckets: number, bucketMs: number) {
    this.#bucketMs = bucketMs;
    this.#epoch = new Float64Array(buckets).fill(-Infinity);
    const counts = {} as Record<Counter, Float64Array>;
    for (const counter of COUNTERS) counts[counter] = new Float64Array(buckets);
    this.#counts = counts;
  }

  /** Adds `amount` to a counter in the bucket of `at`; false if `at` is older than the ring. */
  add(counter: Counter, at: number, amount = 1): boolean {
    const bucket = Math.floor(at / this.#bucketMs);
    const slot = bucket % this.#epoch.length;
    if ((this.#epoch[slot] as number) > bucket) return false;
    if (this.#epoch[slot] !== bucket) {
      this.#epoch[slot] = bucket;
      for (const counter of COUNTERS) this.#counts[counter][slot] = 0;
    }
    this.#counts[counter][slot] = (this.#counts[counter][slot] as number) + amount;
    return true;
  }

  /**
   * The number of waiting members changes by `delta` at `at`: the time since the last change is
   * busy time if anyone was waiting. Events should come in time order; a late one counts as at the
   * last change. The count never goes below 0 (a departure of someone whose arrival was not seen).
   */
  occupancy(delta: number, at: number): void {
    const now = Math.max(at, this.#changedAt);
    if (this.#waiting > 0) this.#spread(this.#changedAt, now);
    this.#waiting = Math.max(0, this.#waiting + delta);
    this.#changedAt = now;
  }

  #spread(from: number, to: number): void {
    const start = Math.max(from, to - this.#epoch.length * this.#bucketMs);
    for (let at = start; at < to;) {
      const end = Math.min(to, (Math.floor(at / this.#bucketMs) + 1) * this.#bucketMs);
      this.add('busy', at, end - at);
      at = end;
    }
  }

  /** Weighted sums over the buckets in (`now` − window, `now`], observed from `since` on. */
  sums(now: number, since: number, halfLifeMs: number): HistorySums {
    const sums = {
      time: 0,
      servedSquared: 0,
      matchCount: 0,
      servedCount: 0,
      arrivalCount: 0,
    } as HistorySums;
    for (const counter of COUNTERS) sums[counter] = 0;
    const last = Math.floor(now / this.#bucketMs);
    const from = Math.max(since, (last - this.#epoch.length + 1) * this.#bucketMs);
    for (let bucket = last - this.#epoch.length + 1; bucket <= last; bucket += 1) {
      const start = Math.max(bucket * this.#bucketMs, from);
      const end = Math.min((bucket + 1) * this.#bucketMs, now);
      // A bucket starting at `now` has no time yet but may hold events of this very moment.
      if (end < start) continue;
      const weight = 2 ** (-(now - (start + end) / 2) / halfLifeMs);
      sums.time += weight * (end - start);
      // The busy stretch still open (members waiting since the last change) counts up to now.
      if (this.#waiting > 0) sums.busy += weight * Math.max(0, end - Math.max(start, this.#changedAt));
      const slot = bucket % this.#epoch.length;
      if (this.#epoch[slot] !== bucket) continue;
      for (const counter of COUNTERS) sums[counter] += weight * (this.#counts[counter][slot] as number);
      const served = this.#counts.served[slot] as number;
      sums.servedSquared += weight * weight * served;
      sums.matchCount += this.#counts.matches[slot] as number;
      sums.servedCount += served;
      sums.arrivalCount += this.#counts.arrivals[slot] as number;
    }
    return sums;
  }
}

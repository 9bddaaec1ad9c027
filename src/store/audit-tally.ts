/** One occurrence counted by {@link AuditTally}: rows are written per `key`, not per occurrence. */
export interface TallyEntry {
  actor: string;
  action: string;
  target: string;
  /** What the occurrences of one summary row share (e.g. `<network>|<reason>`). */
  key: string;
  /** Kept from the first occurrence of the key in the interval, plus the counters. */
  detail?: Record<string, unknown>;
  /** A short note of this occurrence (e.g. the route); up to 5 distinct ones are kept per row. */
  sample?: string;
}

/** A summary row, ready to append. */
export interface TallyRow {
  actor: string;
  action: string;
  target: string;
  at: number;
  detail: Record<string, unknown> & { count: number; firstAt: number; lastAt: number };
}

interface Bucket {
  entry: TallyEntry;
  count: number;
  firstAt: number;
  lastAt: number;
  samples: string[];
  /** Keys folded into the overflow bucket (only there). */
  keys: number;
}

/** Distinct notes kept per summary row. */
const MAX_SAMPLES = 5;
/** Characters of a note that are kept. */
const MAX_SAMPLE_LENGTH = 200;

/**
 * Counts repeated audit events in memory so that a flood costs a map update per event and at most
 * one row per key per flush: the row carries `count`, `firstAt`, `lastAt` (ms) and `samples`. At most
 * `maxKeys` keys are tracked; occurrences of further keys are folded, per action, into one overflow
 * row (`key: '*'`, with `keys`, the number of keys folded), so memory and rows stay bounded whatever
 * the number of distinct keys, and no occurrence goes uncounted.
 */
export class AuditTally {
  readonly #maxKeys: number;
  #buckets = new Map<string, Bucket>();

  constructor(maxKeys: number) {
    this.#maxKeys = maxKeys;
  }

  /** Keys pending (the overflow rows included). */
  get size(): number {
    return this.#buckets.size;
  }

  /** Counts one occurrence at `now` (ms). Never throws, never does I/O. */
  add(entry: TallyEntry, now: number): void {
    let bucket = this.#buckets.get(entry.key);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#maxKeys) {
        this.#overflow(entry, now);
        return;
      }
      bucket = { entry, count: 0, firstAt: now, lastAt: now, samples: [], keys: 1 };
      this.#buckets.set(entry.key, bucket);
    }
    count(bucket, now, entry.sample);
  }

  #overflow(entry: TallyEntry, now: number): void {
    // Keyed outside the caller's key space (a NUL cannot come from an address or a reason).
    const key = `\0overflow\0${entry.action}`;
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = {
        entry: { actor: entry.actor, action: entry.action, target: entry.target, key: '*' },
        count: 0,
        firstAt: now,
        lastAt: now,
        samples: [],
        keys: 0,
      };
      this.#buckets.set(key, bucket);
    }
    // An estimate of the distinct keys folded: the first occurrence of a key cannot be told from a
    // repeat without remembering it, which is what the cap is there to avoid.
    bucket.keys += 1;
    count(bucket, now, entry.sample);
  }

  /** Takes what was counted (the tally starts empty again), as rows stamped `at`. */
  take(at: number): TallyRow[] {
    const buckets = this.#buckets;
    this.#buckets = new Map();
    return [...buckets.values()].map((bucket) => ({
      actor: bucket.entry.actor,
      action: bucket.entry.action,
      target: bucket.entry.target,
      at,
      detail: {
        ...bucket.entry.detail,
        ...(bucket.entry.key === '*' ? { overflow: true, keys: bucket.keys } : {}),
        count: bucket.count,
        firstAt: bucket.firstAt,
        lastAt: bucket.lastAt,
        samples: bucket.samples,
      },
    }));
  }
}

function count(bucket: Bucket, now: number, sample: string | undefined): void {
  bucket.count += 1;
  bucket.lastAt = now;
  if (sample === undefined || bucket.samples.length >= MAX_SAMPLES) return;
  const note = sample.slice(0, MAX_SAMPLE_LENGTH);
  if (!bucket.samples.includes(note)) bucket.samples.push(note);
}

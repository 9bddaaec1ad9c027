// Histogram observations counted in plain numbers on a hot path and handed to prom-client when the
// histogram is read (a scrape, the metrics history). prom-client's observe(), even through a bound
// child, allocates a labels-and-value object, validates the labels and builds their hash string on
// every call: at tens of thousands of jobs a second that showed in the queue driver's profile.
import { Histogram, type LabelValues, type Registry } from 'prom-client';

/** prom-client's stored state of one label set of a histogram (not part of its typed API). */
interface HistogramEntry {
  labels: Record<string, string | number>;
  /** Per upper bound, observations in that bucket only (not cumulative). */
  bucketValues: Record<string, number>;
  sum: number;
  count: number;
}

/**
 * The observations of one label set not yet handed to its histogram: a count per bucket, the sum
 * and the count. Allocates nothing per observation.
 */
export class HistogramTally {
  readonly #labels: Readonly<Record<string, string>>;
  readonly #bounds: readonly number[];
  /** Per bucket (not cumulative); the last slot holds values above the highest bound. */
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(labels: Readonly<Record<string, string>>, bounds: readonly number[]) {
    this.#labels = labels;
    this.#bounds = bounds;
    this.#counts = new Float64Array(bounds.length + 1);
  }

  /**
   * Counts one observation, in the first bucket whose upper bound is ≥ `value` (as prom-client
   * does). A value that is not a finite number is ignored: prom-client would throw, and a metric
   * must not fail the job it measures.
   */
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i += 1;
    this.#counts[i] = this.#counts[i]! + 1;
    this.#sum += value;
    this.#count += 1;
  }

  /** Adds what was tallied since the last flush to `histogram`'s series for these labels. */
  flush(histogram: Histogram<string>, labelNames: readonly string[]): void {
    if (this.#count === 0) return;
    const entry = this.#entry(histogram, labelNames);
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i += 1) {
      const n = this.#counts[i]!;
      if (n === 0) continue;
      const key = String(bounds[i]);
      entry.bucketValues[key] = (entry.bucketValues[key] ?? 0) + n;
    }
    entry.sum += this.#sum;
    entry.count += this.#count;
    this.#counts.fill(0);
    this.#sum = 0;
    this.#count = 0;
  }

  /** prom-client's entry for these labels, created (at zero) when it has none (first flush, after a reset). */
  #entry(histogram: Histogram<string>, labelNames: readonly string[]): HistogramEntry {
    const find = () =>
      Object.values((histogram as unknown as { hashMap: Record<string, HistogramEntry> }).hashMap).find(
        (entry) => labelNames.every((name) => entry.labels[name] === this.#labels[name]),
      );
    const found = find();
    if (found !== undefined) return found;
    histogram.zero(this.#labels);
    const created = find();
    if (created === undefined) throw new Error('prom-client kept no histogram series after zero()');
    return created;
  }
}

/**
 * A prom-client histogram fed through {@link HistogramTally}s: bind a tally per label set once
 * ({@link labels}), observe on it per event; the tallies are handed to the histogram whenever it is
 * read, so every reader (the `/metrics` text, `get()`, the metrics history) sees every observation.
 * Observations tallied when the registry is reset are kept and reported after it.
 */
export class TalliedHistogram<L extends string> {
  readonly histogram: Histogram<L>;
  readonly #buckets: readonly number[];
  readonly #labelNames: readonly L[];
  readonly #tallies: HistogramTally[] = [];

  constructor(config: {
    name: string;
    help: string;
    labelNames: readonly L[];
    buckets: readonly number[];
    registers: Registry[];
  }) {
    const tallies = this.#tallies;
    const labelNames = config.labelNames;
    this.#buckets = [...config.buckets].sort((a, b) => a - b);
    this.#labelNames = labelNames;
    this.histogram = new Histogram<L>({
      name: config.name,
      help: config.help,
      labelNames,
      buckets: [...this.#buckets],
      registers: config.registers,
      collect() {
        for (const tally of tallies) tally.flush(this, labelNames);
      },
    });
  }

  /** The tally of one label set: bind it once, then call its `observe` per event. */
  labels(labels: LabelValues<L> & Record<L, string>): HistogramTally {
    const tally = new HistogramTally(
      Object.fromEntries(this.#labelNames.map((name) => [name, labels[name]])),
      this.#buckets,
    );
    this.#tallies.push(tally);
    return tally;
  }
}

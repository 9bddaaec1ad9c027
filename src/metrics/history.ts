import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { bulwarkError, type FieldProblem } from '../errors/index.js';
import type { Store } from '../store/types.js';
import { BUILT_IN_AREAS, RegistrySampler } from './history-sampler.js';
import { canonicalSeries, seriesName, type SeriesLabels } from './history-series.js';
import { mergeInto, PointStore, type PointRow } from './history-store.js';

export { histogramQuantile } from './history-sampler.js';
export { parseSeriesName, seriesName } from './history-series.js';

/** One storage tier: buckets of `resolutionS` seconds, kept for `retentionMs`. */
export interface HistoryTier {
  resolutionS: number;
  retentionMs: number;
}

/** 10 s for 6 h, 1 min for 7 days, 1 h for 90 days. */
export const DEFAULT_HISTORY_TIERS: readonly HistoryTier[] = [
  { resolutionS: 10, retentionMs: 6 * 3_600_000 },
  { resolutionS: 60, retentionMs: 7 * 86_400_000 },
  { resolutionS: 3600, retentionMs: 90 * 86_400_000 },
];

/** Options of {@link MetricsHistory}. */
export interface MetricsHistoryOptions {
  store: Store;
  /** The Bulwark registry (`Metrics#registry`) the built-in series are read from. */
  registry: Registry;
  /** Sampling and write failures are logged here (warn), once per outage. */
  logger?: Logger;
  /**
   * Added as an `instance` label to every series, so instances sharing a store keep separate series.
   * Unset: instances sharing a store merge their samples into the same buckets.
   */
  instanceId?: string;
  /** Sampling interval in ms (default 10 000); the finest tier's resolution must equal it. */
  intervalMs?: number;
  /** Finest first; each resolution a multiple of the previous one (default {@link DEFAULT_HISTORY_TIERS}). */
  tiers?: readonly HistoryTier[];
  /** Interval of the downsampling and retention pass in ms (default 60 000). */
  compactEveryMs?: number;
  /** Clock in ms since the epoch (default `Date.now`). */
  now?: () => number;
}

/** One bucket of a series: `count` samples with their mean, extremes and the newest one. */
export interface HistoryPoint {
  /** Bucket start, ms since the epoch. */
  at: number;
  count: number;
  avg: number;
  min: number;
  max: number;
  last: number;
}

/** A series read back: points of one resolution, oldest first. */
export interface HistoryQueryResult {
  resolutionS: number;
  points: HistoryPoint[];
}

type Reader = () => number | undefined | Promise<number | undefined>;

/**
 * The embedded metrics history: samples the Bulwark registry (HTTP rates, errors and latency
 * quantiles per route, dependency modes, queue depths, cache hit ratios, memory, event-loop delay)
 * and the applications' own series every `intervalMs` into the store, downsamples older buckets into
 * coarser tiers, deletes buckets past each tier's retention, and answers range queries.
 *
 * Each sample is one transaction written as soon as it is taken, off the request path, so a crash
 * loses at most the interval in progress. Timers are unref'd; timer-driven failures are logged, never
 * thrown. Prometheus (`/metrics`) stays the way to scale out; this is the embedded default.
 */
export class MetricsHistory {
  readonly intervalMs: number;
  readonly tiers: readonly HistoryTier[];
  readonly compactEveryMs: number;
  readonly #points: PointStore;
  readonly #sampler: RegistrySampler;
  readonly #logger: Logger | undefined;
  readonly #extra: SeriesLabels;
  readonly #clock: () => number;
  readonly #apps = new Map<string, Reader>();
  /** Application series whose reader failed, so each outage is logged once. */
  readonly #failingReaders = new Set<string>();
  #sampleTimer: NodeJS.Timeout | undefined;
  #compactTimer: NodeJS.Timeout | undefined;
  /** The sample in progress (samples never overlap: rates need consecutive baselines). */
  #sampling: Promise<unknown> = Promise.resolve();
  #busy = false;
  #compacting: Promise<void> | undefined;
  #pruned = false;
  /** What is failing now ('sample', 'compaction'), so each outage is logged once. */
  readonly #failing = new Set<string>();
  #closed: Promise<void> | undefined;

  /** Throws `BWK_ERR_METRICS_OPTIONS` naming each bad option. Starts nothing. */
  constructor(opts: MetricsHistoryOptions) {
    this.intervalMs = opts.intervalMs ?? 10_000;
    this.tiers = (opts.tiers ?? DEFAULT_HISTORY_TIERS).map((tier) => ({ ...tier }));
    this.compactEveryMs = opts.compactEveryMs ?? 60_000;
    validateOptions(this.intervalMs, this.tiers, this.compactEveryMs);
    this.#points = new PointStore(opts.store.db, opts.store.engine);
    this.#sampler = new RegistrySampler(opts.registry);
    this.#logger = opts.logger;
    this.#extra = opts.instanceId === undefined ? {} : { instance: opts.instanceId };
    this.#clock = opts.now ?? Date.now;
  }

  /** The history's clock, ms since the epoch. */
  now(): number {
    return this.#clock();
  }

  /**
   * Samples an application series at every tick: `series` is `name` or `name{label="value",...}`
   * (dotted name, e.g. `app.orders_open{region="eu"}`; prefer the `app.` area), stored under its
   * canonical form (labels sorted, plus `instance` when set). `read` returning `undefined` or a
   * non-finite number, throwing or rejecting skips that sample (a failure is logged once per outage).
   * Throws `BWK_ERR_METRICS_OPTIONS` for a malformed name, a built-in area or a name registered twice.
   */
  register(series: string, read: Reader): void {
    const name = canonicalSeries(series, this.#extra, 'series');
    const area = name.split(/[.{]/, 1)[0] ?? '';
    const problem = (BUILT_IN_AREAS as readonly string[]).includes(area)
      ? `is in the built-in area "${area}"; use another, e.g. app.`
      : this.#apps.has(name)
        ? 'is already registered'
        : undefined;
    if (problem !== undefined) {
      throw bulwarkError(
        'BWK_ERR_METRICS_OPTIONS',
        { summary: `series ${series} ${problem}` },
        { details: [{ field: 'series', message: `${series} ${problem}` }] },
      );
    }
    this.#apps.set(name, read);
  }

  /** Starts sampling every `intervalMs` and compacting every `compactEveryMs` (unref'd timers). */
  start(): void {
    if (this.#sampleTimer !== undefined || this.#closed !== undefined) return;
    this.#sampling = this.#sampling
      .then(() => this.#sampler.prime(this.#clock()))
      .catch((error: unknown) => this.#failed(error, 'sample'));
    this.#sampleTimer = setInterval(() => this.#tick(), this.intervalMs).unref();
    this.#compactTimer = setInterval(() => {
      this.compact().catch((error: unknown) => this.#failed(error, 'compaction'));
    }, this.compactEveryMs).unref();
  }

  /**
   * Takes one sample of every series and writes it in one transaction; resolves with the number of
   * points written once they are committed (then they survive a crash). Rejects with the store's error.
   * The first sample of a history that was not started only sets the baseline of the rates.
   */
  sampleNow(): Promise<number> {
    if (this.#closed !== undefined) return Promise.resolve(0);
    return this.#enqueueSample();
  }

  /**
   * One downsampling and retention pass: for each pair of adjacent tiers, the coarse buckets that are
   * complete (ended at least one sampling interval ago) are recomputed from the finer tier — replaced,
   * never added to, so a second run or another instance's run changes nothing — then every tier's
   * buckets that ended more than its retention ago are deleted. Concurrent calls share one pass.
   * Rejects with the store's error.
   */
  compact(): Promise<void> {
    this.#compacting ??= this.#compact()
      .then(() => void this.#failing.delete('compaction'))
      .finally(() => (this.#compacting = undefined));
    return this.#compacting;
  }

  /**
   * The points of `series` (exact canonical name) whose buckets overlap [`fromMs`, `toMs`], oldest
   * first. `resolutionS` must be a tier's; by default the finest tier whose retention still covers
   * `fromMs` (the coarsest when none does). Buckets not downsampled yet are merged from finer tiers
   * on the fly, so every resolution reaches the newest sample. With `maxPoints`, buckets are merged
   * into coarser ones (a whole number of the tier's; the answer's `resolutionS` says which) until the
   * range fits in that many. An unknown series has no points. Throws `BWK_ERR_METRICS_QUERY_INVALID`
   * naming the bad argument.
   */
  async query(
    series: string,
    fromMs: number,
    toMs: number,
    resolutionS?: number,
    maxPoints?: number,
  ): Promise<HistoryQueryResult> {
    for (const [field, value] of [
      ['from', fromMs],
      ['to', toMs],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 0) invalid(`${field} must be ms since the epoch`);
    }
    if (fromMs > toMs) invalid('from must not be after to');
    const now = this.#clock();
    const tier =
      resolutionS === undefined
        ? (this.tiers.find((t) => now - t.retentionMs <= fromMs) ?? this.tiers[this.tiers.length - 1])
        : this.tiers.find((t) => t.resolutionS === resolutionS);
    if (tier === undefined) {
      invalid(`resolution must be one of ${this.tiers.map((t) => t.resolutionS).join(', ')} (seconds)`);
    }
    const bucketMs = tier.resolutionS * 1000;
    const rows = await this.#rows(
      this.tiers.indexOf(tier),
      series,
      Math.floor(fromMs / bucketMs) * bucketMs,
      toMs,
    );
    if (maxPoints === undefined || rows.length <= maxPoints) {
      return { resolutionS: tier.resolutionS, points: rows.map(toPoint) };
    }
    // Coarser buckets, a whole number of the tier's, so that the range fits in `maxPoints`.
    const spanS = (toMs - Math.floor(fromMs / bucketMs) * bucketMs) / 1000;
    const step = Math.ceil(spanS / Math.max(1, maxPoints - 1) / tier.resolutionS) * tier.resolutionS;
    return { resolutionS: step, points: mergeInto(rows, step).map(toPoint) };
  }

  /**
   * Buckets of tier `index` starting in [`fromMs` (bucket-aligned), `toMs`]: the stored ones, then,
   * after the newest bucket downsampled into this tier, the finer tier's merged on the fly.
   */
  async #rows(index: number, series: string, fromMs: number, toMs: number): Promise<PointRow[]> {
    const tier = this.tiers[index];
    if (tier === undefined) return [];
    const stored = await this.#points.points(series, tier.resolutionS, fromMs, toMs);
    if (index === 0) return stored;
    const bucketMs = tier.resolutionS * 1000;
    const newest = await this.#points.newestAt(tier.resolutionS);
    const tailFrom = Math.max(fromMs, newest === undefined ? 0 : newest + bucketMs);
    if (tailFrom > toMs) return stored;
    const finer = await this.#rows(index - 1, series, tailFrom, toMs);
    return stored.concat(mergeInto(finer, tier.resolutionS));
  }

  /** Every stored series name starting with `prefix`, sorted. */
  async seriesNames(prefix = ''): Promise<string[]> {
    const names = await this.#points.seriesNames();
    return names.filter((name) => name.startsWith(prefix)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /**
   * Stops the timers, waits for the sample and pass in progress, and writes a last sample (a failure
   * is logged, not thrown). Leaves the store open. Safe to call twice.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#sampleTimer);
      clearInterval(this.#compactTimer);
      await this.#compacting?.catch(() => undefined);
      await this.#enqueueSample().catch((error: unknown) => this.#failed(error, 'sample'));
      this.#sampler.stop();
    })();
    return this.#closed;
  }

  #enqueueSample(): Promise<number> {
    const run = this.#sampling.then(() => this.#sample());
    this.#sampling = run.catch(() => undefined);
    return run;
  }

  #tick(): void {
    // A store slower than the interval skips ticks rather than queueing samples behind each other.
    if (this.#busy) return;
    this.#busy = true;
    this.sampleNow()
      .catch((error: unknown) => this.#failed(error, 'sample'))
      .finally(() => (this.#busy = false));
  }

  async #sample(): Promise<number> {
    const now = this.#clock();
    const values = new Map<string, number>();
    const emit = (name: string, labels: SeriesLabels, value: number): void => {
      if (Number.isFinite(value)) values.set(seriesName(name, { ...labels, ...this.#extra }), value);
    };
    await this.#sampler.sample(now, emit);
    await Promise.all([...this.#apps].map(async ([name, read]) => this.#readApp(name, read, values)));
    const resolution = this.tiers[0]?.resolutionS ?? 10;
    const at = Math.floor(now / (resolution * 1000)) * resolution * 1000;
    const rows: PointRow[] = [];
    for (const [series, v] of values) {
      rows.push({ series, resolution, at, count: 1, sum: v, min: v, max: v, last: v });
    }
    if (rows.length > 0) await this.#points.write(rows);
    if (this.#failing.delete('sample')) this.#logger?.info('metrics history: writing samples again');
    return rows.length;
  }

  async #readApp(name: string, read: Reader, into: Map<string, number>): Promise<void> {
    try {
      const value = await read();
      if (typeof value === 'number' && Number.isFinite(value)) into.set(name, value);
      this.#failingReaders.delete(name);
    } catch (error) {
      if (this.#failingReaders.has(name)) return;
      this.#failingReaders.add(name);
      this.#logger?.warn({ err: error, series: name }, 'metrics history: a series reader failed');
    }
  }

  async #compact(): Promise<void> {
    const now = this.#clock();
    for (let i = 1; i < this.tiers.length; i++) {
      const fine = this.tiers[i - 1];
      const coarse = this.tiers[i];
      if (fine === undefined || coarse === undefined) continue;
      const coarseMs = coarse.resolutionS * 1000;
      // A bucket is complete once the samples taken before its end have had an interval to land.
      const end = Math.floor((now - this.intervalMs) / coarseMs) * coarseMs;
      await this.#points.downsample(fine.resolutionS, coarse.resolutionS, end, now - fine.retentionMs);
    }
    for (const tier of this.tiers) {
      await this.#points.deleteBefore(tier.resolutionS, now - tier.retentionMs - tier.resolutionS * 1000);
    }
    if (!this.#pruned) {
      // Once per process: buckets of tiers no longer configured go when the longest retention ends.
      const longest = Math.max(...this.tiers.map((t) => t.retentionMs + t.resolutionS * 1000));
      await this.#points.deleteOtherResolutions(
        this.tiers.map((t) => t.resolutionS),
        now - longest,
      );
      this.#pruned = true;
    }
  }

  #failed(error: unknown, what: 'sample' | 'compaction'): void {
    if (this.#failing.has(what)) return;
    this.#failing.add(what);
    this.#logger?.warn({ err: error }, `metrics history: ${what} failed`);
  }
}

function toPoint(row: PointRow): HistoryPoint {
  return {
    at: row.at,
    count: row.count,
    avg: row.count > 0 ? row.sum / row.count : 0,
    min: row.min,
    max: row.max,
    last: row.last,
  };
}

function invalid(detail: string): never {
  throw bulwarkError('BWK_ERR_METRICS_QUERY_INVALID', { detail });
}

function validateOptions(intervalMs: number, tiers: readonly HistoryTier[], compactEveryMs: number): void {
  const problems: FieldProblem[] = [];
  const positive = (field: string, value: number) => {
    if (!Number.isSafeInteger(value) || value <= 0)
      problems.push({ field, message: 'must be a positive integer' });
  };
  positive('intervalMs', intervalMs);
  positive('compactEveryMs', compactEveryMs);
  if (tiers.length === 0) problems.push({ field: 'tiers', message: 'must name at least one tier' });
  tiers.forEach((tier, i) => {
    positive(`tiers[${i}].resolutionS`, tier.resolutionS);
    positive(`tiers[${i}].retentionMs`, tier.retentionMs);
    const previous = tiers[i - 1];
    const next = tiers[i + 1];
    if (i === 0 && tier.resolutionS * 1000 !== intervalMs) {
      problems.push({
        field: 'tiers[0].resolutionS',
        message: `must equal intervalMs / 1000 (${intervalMs / 1000})`,
      });
    }
    if (previous !== undefined && tier.resolutionS % previous.resolutionS !== 0) {
      problems.push({
        field: `tiers[${i}].resolutionS`,
        message: `must be a multiple of tiers[${i - 1}].resolutionS, greater than it`,
      });
    } else if (previous !== undefined && tier.resolutionS <= previous.resolutionS) {
      problems.push({
        field: `tiers[${i}].resolutionS`,
        message: `must be greater than tiers[${i - 1}].resolutionS`,
      });
    }
    // Fine buckets must outlive the downsampling of the coarse bucket they fall in.
    if (next !== undefined && tier.retentionMs < 2 * next.resolutionS * 1000) {
      problems.push({
        field: `tiers[${i}].retentionMs`,
        message: `must be at least twice tiers[${i + 1}].resolutionS (${2 * next.resolutionS * 1000} ms)`,
      });
    }
  });
  if (problems.length > 0) {
    const summary = problems.map((p) => `${p.field} ${p.message}`).join('; ');
    throw bulwarkError('BWK_ERR_METRICS_OPTIONS', { summary }, { details: problems });
  }
}

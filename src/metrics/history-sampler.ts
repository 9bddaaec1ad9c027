import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { MetricValueWithName, Registry } from 'prom-client';
import type { SeriesLabels } from './history-series.js';

/** Receives one sampled value; non-finite values are dropped by the caller. */
export type Emit = (name: string, labels: SeriesLabels, value: number) => void;

/** Cumulative totals of one `METHOD route`, summed over status classes. */
interface HttpTotals {
  count: number;
  errors: number;
  /** Cumulative count per finite bucket bound, as in the exposition format. */
  buckets: number[];
}

/** Cumulative cache lookups of one cache. */
interface CacheTotals {
  l1Hit: number;
  l1Miss: number;
  l2Hit: number;
}

/** Counters read at one sample: the baseline of the next one's rates. */
interface Baseline {
  at: number;
  http: Map<string, HttpTotals>;
  cache: Map<string, CacheTotals>;
}

type Labels = Partial<Record<string, string | number>>;

/** The aggregate over every route is reported under this route label. */
export const ALL_ROUTES = '*';

/**
 * The φ-quantile of a histogram's cumulative bucket counts, like Prometheus' `histogram_quantile`:
 * linear interpolation inside the bucket holding the rank (the first bucket starts at 0), and the
 * highest finite bound when the rank falls in `+Inf`. `undefined` when `total` is 0.
 */
export function histogramQuantile(
  q: number,
  bounds: readonly number[],
  cumulative: readonly number[],
  total: number,
): number | undefined {
  if (total <= 0 || bounds.length === 0) return undefined;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    const upper = bounds[i] ?? 0;
    const count = cumulative[i] ?? 0;
    if (count < rank) continue;
    const lower = i === 0 ? 0 : (bounds[i - 1] ?? 0);
    const below = i === 0 ? 0 : (cumulative[i - 1] ?? 0);
    if ((i === 0 && upper <= 0) || count === below) return upper;
    return lower + ((upper - lower) * (rank - below)) / (count - below);
  }
  return bounds[bounds.length - 1];
}

/**
 * Turns the Bulwark registry into sampled values: rates and quantiles from counter and histogram
 * deltas since the previous sample, gauges as they are, and process figures read directly. The first
 * sample only records the counters' baseline (no rates yet); {@link prime} takes it ahead of time.
 */
export class RegistrySampler {
  readonly #registry: Registry;
  #baseline: Baseline | undefined;
  #loop: IntervalHistogram | undefined;

  constructor(registry: Registry) {
    this.#registry = registry;
  }

  /**
   * Starts the event-loop delay monitor and records the counters' baseline. The history keeps its own
   * monitor: prom-client's resets its window on every `/metrics` scrape, and only updates its
   * `nodejs_eventloop_lag_*` gauges when scraped.
   */
  async prime(now: number): Promise<void> {
    this.#startLoopMonitor();
    if (this.#baseline === undefined) await this.#readCounters(now, () => undefined);
  }

  /** Emits every built-in series at `now` (ms); rates cover the time since the previous call. */
  async sample(now: number, emit: Emit): Promise<void> {
    this.#startLoopMonitor();
    await this.#readCounters(now, emit);
    await this.#readGauge('bulwark_dependency_mode', (labels, value) =>
      emit('dependency.mode', { dependency: String(labels['dependency'] ?? '') }, value),
    );
    await this.#readGauge('bulwark_queue_jobs', (labels, value) =>
      emit(
        'queue.jobs',
        { queue: String(labels['queue'] ?? ''), state: String(labels['state'] ?? '') },
        value,
      ),
    );
    await this.#readLeaks(emit);
    const memory = process.memoryUsage();
    emit('process.rss_bytes', {}, memory.rss);
    emit('process.heap_used_bytes', {}, memory.heapUsed);
    const loop = this.#loop;
    if (loop !== undefined && loop.count > 0) {
      emit('nodejs.eventloop_lag_p99_ms', {}, loop.percentile(99) / 1e6);
      loop.reset();
    }
  }

  /** Stops the event-loop delay monitor. */
  stop(): void {
    this.#loop?.disable();
    this.#loop = undefined;
  }

  #startLoopMonitor(): void {
    if (this.#loop !== undefined) return;
    this.#loop = monitorEventLoopDelay({ resolution: 10 });
    this.#loop.enable();
  }

  /** Reads the HTTP histogram and cache counters, emits rates against the baseline, keeps the new one. */
  async #readCounters(now: number, emit: Emit): Promise<void> {
    const http = await this.#readHttp();
    const cache = await this.#readCache();
    const previous = this.#baseline;
    // Two samples in the same millisecond have no rate; the next one covers both intervals.
    if (previous !== undefined && now <= previous.at) return;
    if (previous !== undefined) {
      const seconds = (now - previous.at) / 1000;
      if (http !== undefined) emitHttp(http.bounds, http.totals, previous.http, seconds, emit);
      emitCache(cache, previous.cache, seconds, emit);
    }
    this.#baseline = { at: now, http: http?.totals ?? new Map<string, HttpTotals>(), cache };
  }

  async #readHttp(): Promise<{ bounds: number[]; totals: Map<string, HttpTotals> } | undefined> {
    const values = await this.#values('http_request_duration_seconds');
    if (values === undefined) return undefined;
    const bounds: number[] = [];
    const index = new Map<number, number>();
    const totals = new Map<string, HttpTotals>();
    for (const { labels, value, metricName = '' } of values) {
      const key = `${String(labels['method'] ?? '')} ${String(labels['route'] ?? '')}`;
      let totalsOf = totals.get(key);
      if (totalsOf === undefined) {
        totalsOf = { count: 0, errors: 0, buckets: [] };
        totals.set(key, totalsOf);
      }
      if (metricName.endsWith('_count')) {
        totalsOf.count += value;
        if (labels['status_class'] === '5xx') totalsOf.errors += value;
      } else if (metricName.endsWith('_bucket') && typeof labels['le'] === 'number') {
        // Every label set of one histogram has the same bounds, in increasing order.
        let i = index.get(labels['le']);
        if (i === undefined) {
          i = bounds.length;
          bounds.push(labels['le']);
          index.set(labels['le'], i);
        }
        totalsOf.buckets[i] = (totalsOf.buckets[i] ?? 0) + value;
      }
    }
    return { bounds, totals };
  }

  async #readCache(): Promise<Map<string, CacheTotals>> {
    const totals = new Map<string, CacheTotals>();
    for (const { labels, value } of (await this.#values('bulwark_cache_lookups_total')) ?? []) {
      const cache = String(labels['cache'] ?? '');
      let totalsOf = totals.get(cache);
      if (totalsOf === undefined) {
        totalsOf = { l1Hit: 0, l1Miss: 0, l2Hit: 0 };
        totals.set(cache, totalsOf);
      }
      if (labels['tier'] === 'l1') totalsOf[labels['result'] === 'hit' ? 'l1Hit' : 'l1Miss'] += value;
      else if (labels['tier'] === 'l2' && labels['result'] === 'hit') totalsOf.l2Hit += value;
    }
    return totals;
  }

  /** Leak detection's gauges (src/leaks/), when it runs: each signal, its growth, how many leak. */
  async #readLeaks(emit: Emit): Promise<void> {
    const signal = (labels: Labels) => ({ signal: String(labels['signal'] ?? '') });
    await this.#readGauge('bulwark_leak_signal_value', (labels, value) =>
      emit('leak.value', signal(labels), value),
    );
    await this.#readGauge('bulwark_leak_slope', (labels, value) =>
      emit('leak.slope_per_min', signal(labels), value * 60),
    );
    const suspected = await this.#values('bulwark_leak_suspected');
    if (suspected !== undefined)
      emit(
        'leak.suspected',
        {},
        suspected.reduce((sum, { value }) => sum + value, 0),
      );
    await this.#readGauge('bulwark_leak_held_connections', (_, value) =>
      emit('leak.held_connections', {}, value),
    );
  }

  async #readGauge(name: string, each: (labels: Labels, value: number) => void): Promise<void> {
    for (const { labels, value } of (await this.#values(name)) ?? []) each(labels, value);
  }

  /** The current values of one metric, `undefined` when it is not registered. */
  async #values(name: string): Promise<MetricValueWithName<string>[] | undefined> {
    const metric = this.#registry.getSingleMetric(name);
    if (metric === undefined) return undefined;
    return (await metric.get()).values;
  }
}

/** Rates, error ratio and latency quantiles per `METHOD route` and over all routes (`*`). */
function emitHttp(
  bounds: number[],
  current: Map<string, HttpTotals>,
  previous: Map<string, HttpTotals>,
  seconds: number,
  emit: Emit,
): void {
  const all: HttpTotals = { count: 0, errors: 0, buckets: bounds.map(() => 0) };
  const perRoute = (route: string, delta: HttpTotals): void => {
    const labels = { route };
    emit('http.requests_per_s', labels, delta.count / seconds);
    emit('http.errors_per_s', labels, delta.errors / seconds);
    if (delta.count === 0) return;
    emit('http.error_ratio', labels, delta.errors / delta.count);
    const p50 = histogramQuantile(0.5, bounds, delta.buckets, delta.count);
    const p99 = histogramQuantile(0.99, bounds, delta.buckets, delta.count);
    if (p50 !== undefined) emit('http.latency_p50_ms', labels, p50 * 1000);
    if (p99 !== undefined) emit('http.latency_p99_ms', labels, p99 * 1000);
  };
  for (const [route, now] of current) {
    let before = previous.get(route);
    // A counter that went down was reset (the registry was rebuilt): count from zero, as Prometheus does.
    if (before !== undefined && now.count < before.count) before = undefined;
    const delta: HttpTotals = {
      count: now.count - (before?.count ?? 0),
      errors: now.errors - (before?.errors ?? 0),
      buckets: bounds.map((_, i) => (now.buckets[i] ?? 0) - (before?.buckets[i] ?? 0)),
    };
    all.count += delta.count;
    all.errors += delta.errors;
    delta.buckets.forEach((n, i) => (all.buckets[i] = (all.buckets[i] ?? 0) + n));
    perRoute(route, delta);
  }
  if (current.size > 0) perRoute(ALL_ROUTES, all);
}

/** Lookups per second and hit ratios (overall, and of the in-process tier) per cache. */
function emitCache(
  current: Map<string, CacheTotals>,
  previous: Map<string, CacheTotals>,
  seconds: number,
  emit: Emit,
): void {
  for (const [cache, now] of current) {
    const before = previous.get(cache) ?? { l1Hit: 0, l1Miss: 0, l2Hit: 0 };
    const l1Hit = now.l1Hit - before.l1Hit;
    // Every lookup starts in L1; an L1 miss goes on to L2 when the cache has one.
    const lookups = l1Hit + now.l1Miss - before.l1Miss;
    const labels = { cache };
    emit('cache.lookups_per_s', labels, Math.max(0, lookups) / seconds);
    if (lookups <= 0) continue;
    emit('cache.hit_ratio', labels, (l1Hit + now.l2Hit - before.l2Hit) / lookups);
    emit('cache.l1_hit_ratio', labels, l1Hit / lookups);
  }
}

/** The areas (first part of a name) of the built-in series, which applications cannot register in. */
export const BUILT_IN_AREAS = ['http', 'dependency', 'queue', 'cache', 'process', 'nodejs', 'leak'] as const;

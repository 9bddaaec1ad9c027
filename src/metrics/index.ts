import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { QueryObserver } from '../store/types.js';
import type { MetricsHistory } from './history.js';
import { TalliedHistogram } from './tallied-histogram.js';

/** Latency buckets in seconds: fine below 10 ms, where a healthy service lives. */
const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

/** Child metrics for one (route, method, status class): looked up once, then reused. */
interface HttpSeries {
  duration: { observe(value: number): void };
  labels: { route: string; method: string; status_class: string };
  /** Requests answered since `http_requests_total` was last read. */
  requests: number;
}

/**
 * prom-client's default process and Node.js metrics into `registry`, less three gauges that
 * prom-client names with a counter's `_total` suffix, which Prometheus linting rejects (the same
 * numbers remain available per type as nodejs_active_{handles,requests,resources}).
 */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ]) {
    registry.removeSingleMetric(name);
  }
}

/**
 * Bulwark's Prometheus metrics. Each instance owns its registry, so several Bulwark instances (and
 * tests) in one process never collide. Serve `render()` with `contentType` at `/metrics`.
 */
export class Metrics {
  readonly registry: Registry;
  /**
   * The embedded metrics history over this registry (set by `createBulwark()` unless turned off):
   * key series sampled into the store, downsampled, queryable. See docs/metrics-history.md.
   */
  history: MetricsHistory | undefined;
  readonly contentType: string;
  readonly #httpDuration: TalliedHistogram;
  readonly #storeDuration: Histogram<'engine' | 'operation' | 'outcome'>;
  readonly #series = new Map<string, HttpSeries>();
  readonly #dependencyMode: Gauge<'dependency'>;
  readonly #dependencySwitches: Counter<'dependency' | 'to' | 'reason'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    this.contentType = this.registry.contentType;
    if (opts.defaultMetrics !== false) collectProcessMetrics(this.registry);
    // Observed on every request: tallied in plain bucket counts, not through prom-client (see TalliedHistogram).
    this.#httpDuration = new TalliedHistogram({
      name: 'http_request_duration_seconds',
      help: 'Time from request received to response sent, by route template, method and status class.',
      labelNames: ['route', 'method', 'status_class'],
      buckets: HTTP_BUCKETS,
      registers: [this.registry],
    });
    const series = this.#series;
    new Counter({
      name: 'http_requests_total',
      help: 'Requests answered, by route template, method and status class.',
      labelNames: ['route', 'method', 'status_class'],
      registers: [this.registry],
      // Tallied in plain numbers per request and handed over when read: prom-client validates and
      // hashes the labels on every inc(), even through a bound child.
      collect() {
        for (const entry of series.values()) {
          if (entry.requests === 0) continue;
          this.inc(entry.labels, entry.requests);
          entry.requests = 0;
        }
      },
    });
    this.#storeDuration = new Histogram({
      name: 'bulwark_store_query_duration_seconds',
      help: 'Store query duration by engine, operation and outcome (ok|error).',
      labelNames: ['engine', 'operation', 'outcome'],
      buckets: STORE_BUCKETS,
      registers: [this.registry],
    });
    this.#dependencyMode = new Gauge({
      name: 'bulwark_dependency_mode',
      help: 'Which side each degradable dependency is served from: 1 primary, 0 fallback.',
      labelNames: ['dependency'],
      registers: [this.registry],
    });
    this.#dependencySwitches = new Counter({
      name: 'bulwark_dependency_switches_total',
      help: 'Failover switches by dependency, destination side and reason.',
      labelNames: ['dependency', 'to', 'reason'],
      registers: [this.registry],
    });
  }

  /** Sets `bulwark_dependency_mode{dependency}`: 1 on the primary, 0 on the fallback. */
  setDependencyMode(dependency: string, mode: 'primary' | 'fallback'): void {
    this.#dependencyMode.set({ dependency }, mode === 'primary' ? 1 : 0);
  }

  /** Counts one switch in `bulwark_dependency_switches_total{dependency,to,reason}`. */
  countDependencySwitch(dependency: string, to: string, reason: string): void {
    this.#dependencySwitches.inc({ dependency, to, reason });
  }

  /**
   * Records one answered request. `route` must be the route template (`/users/:id`), never the raw
   * URL, so the number of series stays bounded; unmatched requests use `unmatched`.
   */
  observeHttp(route: string, method: string, statusCode: number, seconds: number): void {
    const statusClass = statusClassOf(statusCode);
    const key = `${method} ${statusClass} ${route}`;
    let series = this.#series.get(key);
    if (series === undefined) {
      const labels = { route, method, status_class: statusClass };
      series = { duration: this.#httpDuration.series(labels), labels, requests: 0 };
      this.#series.set(key, series);
    }
    series.duration.observe(seconds);
    series.requests += 1;
  }

  /** A store query observer feeding `bulwark_store_query_duration_seconds`. */
  readonly observeQuery: QueryObserver = (event) => {
    this.#storeDuration.observe(
      { engine: event.engine, operation: event.operation, outcome: event.failed ? 'error' : 'ok' },
      event.durationMs / 1000,
    );
  };

  /** The exposition text for `/metrics`. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** Unregisters every metric (the registry is empty afterwards). */
  close(): void {
    this.registry.clear();
    this.#series.clear();
  }
}

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

function statusClassOf(statusCode: number): string {
  return STATUS_CLASSES[Math.floor(statusCode / 100) - 1] ?? 'other';
}

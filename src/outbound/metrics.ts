import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { BreakerState } from './breaker.js';
import type { CallOutcome } from './types.js';

/** `bulwark_outbound_breaker_state`'s value for each state. */
const STATE_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

/** Reuses a metric already on `registry` (two Bulwark instances may share one), else makes it. */
function metric<M>(registry: Registry, name: string, make: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? make();
}

/**
 * The outbound metrics on a registry: `bulwark_outbound_requests_total{upstream,outcome}` (calls, not
 * attempts), `bulwark_outbound_duration_seconds{upstream}` (each call, retries included),
 * `bulwark_outbound_breaker_state{upstream}` (0 closed, 1 half-open, 2 open, read when scraped),
 * `bulwark_outbound_retries_total{upstream}` and `bulwark_outbound_throttled_total{upstream}`.
 * Label values are bounded: upstream names are configuration or code, never request data.
 */
export class OutboundMetrics {
  readonly #requests: Counter<'upstream' | 'outcome'>;
  readonly #duration: Histogram<'upstream'>;
  readonly #retries: Counter<'upstream'>;
  readonly #throttled: Counter<'upstream'>;
  /** Children bound to their labels, by upstream (and outcome): resolving labels hashes them on every call. */
  readonly #bound = new Map<string, { inc(): void }>();
  readonly #durations = new Map<string, { observe(value: number): void }>();

  constructor(registry: Registry, states: () => Iterable<[string, BreakerState]>) {
    const registers = [registry];
    this.#requests = metric(
      registry,
      'bulwark_outbound_requests_total',
      () =>
        new Counter({
          name: 'bulwark_outbound_requests_total',
          help: 'Outbound calls by upstream and outcome (success|failure|deadline|open|throttled|killed).',
          labelNames: ['upstream', 'outcome'],
          registers,
        }),
    );
    this.#duration = metric(
      registry,
      'bulwark_outbound_duration_seconds',
      () =>
        new Histogram({
          name: 'bulwark_outbound_duration_seconds',
          help: 'Duration of outbound calls (retries and backoff included) by upstream.',
          labelNames: ['upstream'],
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          registers,
        }),
    );
    this.#retries = metric(
      registry,
      'bulwark_outbound_retries_total',
      () =>
        new Counter({
          name: 'bulwark_outbound_retries_total',
          help: 'Retries of idempotent outbound calls, by upstream.',
          labelNames: ['upstream'],
          registers,
        }),
    );
    this.#throttled = metric(
      registry,
      'bulwark_outbound_throttled_total',
      () =>
        new Counter({
          name: 'bulwark_outbound_throttled_total',
          help: 'Outbound attempts rejected locally by adaptive throttling, by upstream.',
          labelNames: ['upstream'],
          registers,
        }),
    );
    if (registry.getSingleMetric('bulwark_outbound_breaker_state') === undefined)
      new Gauge({
        name: 'bulwark_outbound_breaker_state',
        help: 'Circuit breaker state by upstream: 0 closed, 1 half-open, 2 open.',
        labelNames: ['upstream'],
        registers,
        collect() {
          for (const [upstream, state] of states()) this.set({ upstream }, STATE_VALUE[state]);
        },
      });
  }

  /** Counts one call that ended with `outcome` after `seconds`. */
  call(upstream: string, outcome: CallOutcome, seconds: number): void {
    this.#child(`r\u0000${upstream}\u0000${outcome}`, () =>
      this.#requests.labels({ upstream, outcome }),
    ).inc();
    this.#durationOf(upstream).observe(seconds);
  }

  #durationOf(upstream: string): { observe(value: number): void } {
    let child = this.#durations.get(upstream);
    if (child === undefined) {
      child = this.#duration.labels({ upstream });
      this.#durations.set(upstream, child);
    }
    return child;
  }

  #child(id: string, make: () => { inc(): void }): { inc(): void } {
    let child = this.#bound.get(id);
    if (child === undefined) {
      child = make();
      this.#bound.set(id, child);
    }
    return child;
  }

  /** Counts one retry. */
  retry(upstream: string): void {
    this.#child(`retry\u0000${upstream}`, () => this.#retries.labels({ upstream })).inc();
  }

  /** Counts one attempt rejected by the adaptive throttle. */
  throttled(upstream: string): void {
    this.#child(`throttled\u0000${upstream}`, () => this.#throttled.labels({ upstream })).inc();
  }
}

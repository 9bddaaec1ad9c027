import { setTimeout as sleep } from 'node:timers/promises';
import type { Registry } from 'prom-client';
import type { Pool } from 'undici';
import { bulwarkError } from '../errors/index.js';
import type { BreakerState } from './breaker.js';
import { UpstreamGuard, type GuardClock } from './guard.js';
import { connectionPool, httpAttempt, isIdempotent } from './http.js';
import { OutboundMetrics } from './metrics.js';
import { UPSTREAM_NAME, validateOutboundOptions } from './options.js';
import type {
  OutboundHttp,
  OutboundOptions,
  OutboundRequest,
  OutboundResponse,
  Protect,
  UpstreamView,
} from './types.js';

export type * from './types.js';
export type { BreakerOptions, BreakerState } from './breaker.js';
export type { RetryBudgetOptions } from './budget.js';
export type { AdaptiveThrottleOptions } from './throttle.js';
export type { GuardClock } from './guard.js';

/** The real clock: `Date.now`, `Math.random`, a timer. */
const REAL_CLOCK: GuardClock = {
  now: () => Date.now(),
  random: () => Math.random(),
  sleep: (ms, signal) => sleep(ms, undefined, { signal }),
};

/**
 * Safe outbound calls: `request()` (`bulwark.http`) to the configured upstreams over undici, and
 * `protect()` (`bulwark.protect`) around any async function, each name with its own breaker,
 * adaptive throttle, retry budget, deadline and kill switch. See docs/outbound.md.
 */
export class Outbound implements OutboundHttp {
  readonly #options: OutboundOptions;
  readonly #guards = new Map<string, UpstreamGuard>();
  readonly #pools = new Map<string, Pool>();
  readonly #metrics: OutboundMetrics;
  readonly #clock: GuardClock;

  /**
   * @throws BWK_ERR_OUTBOUND_OPTIONS naming every bad field of `options`.
   */
  constructor(options: OutboundOptions, registry: Registry, clock: GuardClock = REAL_CLOCK) {
    this.#options = validateOutboundOptions(options);
    this.#clock = clock;
    this.#metrics = new OutboundMetrics(registry, () => this.#states());
    for (const name of Object.keys(options.upstreams ?? {})) this.#guard(name);
  }

  /** The names configured in `upstreams` (each has a kill switch and a health check). */
  get configured(): string[] {
    return Object.keys(this.#options.upstreams ?? {});
  }

  request = async (upstream: string, request: OutboundRequest = {}): Promise<OutboundResponse> => {
    const origin = this.#options.upstreams?.[upstream]?.origin;
    if (origin === undefined) throw bulwarkError('BWK_ERR_OUTBOUND_UNKNOWN_UPSTREAM', { upstream });
    let pool = this.#pools.get(upstream);
    if (pool === undefined) {
      pool = connectionPool(origin, this.#options.upstreams?.[upstream]?.connections ?? 16);
      this.#pools.set(upstream, pool);
    }
    const connections = pool;
    return this.#guard(upstream).run({
      attempt: (signal, remainingMs) => httpAttempt(connections, request, signal, remainingMs),
      deadlineMs: request.deadlineMs,
      idempotent: isIdempotent(request),
      fallback: request.fallback,
    });
  };

  protect: Protect = (name, fn, options = {}) =>
    this.#guard(name).run({
      attempt: async (signal) => ({ value: await fn(signal), accepted: true }),
      deadlineMs: options.deadlineMs,
      idempotent: options.idempotent ?? false,
      fallback: options.fallback,
    });

  /** Turns `name`'s kill switch on (`true`: calls fail fast) or off. */
  setKilled(name: string, killed: boolean): void {
    this.#guard(name).killed = killed;
  }

  /** The breaker state of `name` (undefined for a name never configured nor used). */
  state(name: string): BreakerState | undefined {
    return this.#guards.get(name)?.state();
  }

  upstreams(): UpstreamView[] {
    return [...this.#guards.values()].map((guard) => guard.view());
  }

  /** Closes the connections to every origin (requests in flight end first). */
  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.close()));
  }

  #guard(name: string): UpstreamGuard {
    let guard = this.#guards.get(name);
    if (guard === undefined) {
      if (!UPSTREAM_NAME.test(name))
        throw bulwarkError('BWK_ERR_OUTBOUND_OPTIONS', {
          detail: `the name ${JSON.stringify(name)} must match ${UPSTREAM_NAME.source}`,
        });
      const options = this.#options.upstreams?.[name] ?? this.#options.defaults ?? {};
      guard = new UpstreamGuard(name, options, this.#metrics, this.#clock);
      this.#guards.set(name, guard);
    }
    return guard;
  }

  *#states(): Iterable<[string, BreakerState]> {
    for (const [name, guard] of this.#guards) yield [name, guard.state()];
  }
}

import { setTimeout as sleep } from 'node:timers/promises';
import type { Registry } from 'prom-client';
import type { Pool } from 'undici';
import { bulwarkError } from '../errors/index.js';
import type { BreakerState } from './breaker.js';
import type * as GuardModule from './guard.js';
import type { GuardClock, UpstreamGuard } from './guard.js';
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
 * adaptive throttle, retry budget, deadline and kill switch. See docs/outbound.md. Create it with
 * {@link Outbound.create}.
 */
export class Outbound implements OutboundHttp {
  readonly #options: OutboundOptions;
  readonly #guards = new Map<string, UpstreamGuard>();
  readonly #pools = new Map<string, Promise<Pool>>();
  /** Names whose kill switch is on (kept here too: a guard may be created after the switch). */
  readonly #killed = new Set<string>();
  readonly #metrics: OutboundMetrics;
  readonly #clock: GuardClock;
  // The guards (and cockatiel, ~10 ms to load) load with the first upstream: at start when the
  // options list some, else at the first protect().
  #guardModule: Promise<typeof GuardModule> | undefined;

  private constructor(options: OutboundOptions, registry: Registry, clock: GuardClock) {
    this.#options = options;
    this.#clock = clock;
    this.#metrics = new OutboundMetrics(registry, () => this.#states());
  }

  /**
   * An Outbound for `options`, its metrics on `registry`, with the guards of the configured
   * upstreams ready (their breakers closed).
   *
   * @throws BWK_ERR_OUTBOUND_OPTIONS naming every bad field of `options`.
   */
  static async create(
    options: OutboundOptions,
    registry: Registry,
    clock: GuardClock = REAL_CLOCK,
  ): Promise<Outbound> {
    const outbound = new Outbound(validateOutboundOptions(options), registry, clock);
    for (const name of Object.keys(options.upstreams ?? {})) await outbound.#guard(name);
    return outbound;
  }

  request = async (upstream: string, request: OutboundRequest = {}): Promise<OutboundResponse> => {
    const options = this.#options.upstreams?.[upstream];
    if (options?.origin === undefined) throw bulwarkError('BWK_ERR_OUTBOUND_UNKNOWN_UPSTREAM', { upstream });
    let pool = this.#pools.get(upstream);
    if (pool === undefined) {
      pool = connectionPool(options.origin, options.connections ?? 16);
      this.#pools.set(upstream, pool);
    }
    const connections = await pool;
    return (await this.#guard(upstream)).run({
      attempt: (signal, remainingMs) => httpAttempt(connections, request, signal, remainingMs),
      deadlineMs: request.deadlineMs,
      idempotent: isIdempotent(request),
      fallback: request.fallback,
    });
  };

  protect: Protect = async (name, fn, options = {}) =>
    (await this.#guard(name)).run({
      attempt: async (signal) => ({ value: await fn(signal), accepted: true }),
      deadlineMs: options.deadlineMs,
      idempotent: options.idempotent ?? false,
      fallback: options.fallback,
    });

  /** Turns `name`'s kill switch on (`true`: calls fail fast) or off. */
  setKilled(name: string, killed: boolean): void {
    if (killed) this.#killed.add(name);
    else this.#killed.delete(name);
    const guard = this.#guards.get(name);
    if (guard !== undefined) guard.killed = killed;
  }

  upstreams(): UpstreamView[] {
    return [...this.#guards.values()].map((guard) => guard.view());
  }

  /** Closes the connections to every origin (requests in flight end first). */
  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map(async (pool) => (await pool).close()));
  }

  async #guard(name: string): Promise<UpstreamGuard> {
    const existing = this.#guards.get(name);
    if (existing !== undefined) return existing;
    if (!UPSTREAM_NAME.test(name))
      throw bulwarkError('BWK_ERR_OUTBOUND_OPTIONS', {
        detail: `the name ${JSON.stringify(name)} must match ${UPSTREAM_NAME.source}`,
      });
    const { UpstreamGuard } = await (this.#guardModule ??= import('./guard.js'));
    // Another call may have created it while the module loaded.
    let guard = this.#guards.get(name);
    if (guard === undefined) {
      const options = this.#options.upstreams?.[name] ?? this.#options.defaults ?? {};
      guard = new UpstreamGuard(name, options, this.#metrics, this.#clock);
      guard.killed = this.#killed.has(name);
      this.#guards.set(name, guard);
    }
    return guard;
  }

  *#states(): Iterable<[string, BreakerState]> {
    for (const [name, guard] of this.#guards) yield [name, guard.state()];
  }
}

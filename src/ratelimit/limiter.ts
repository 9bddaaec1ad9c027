import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { bulwarkError } from '../errors/index.js';
import type { Failover } from '../failover/index.js';
import { InstanceCounter } from './instances.js';
import { RateLimitMetrics } from './metrics.js';
import { TopOffenders } from './offenders.js';
import { WindowCounter } from './window-counter.js';
import type { DecisionSource, Offender, RateLimitDecision, RateLimiter, RateLimitPolicy } from './types.js';

/** Options of {@link createRateLimiter}. Times in milliseconds. */
export interface RateLimiterOptions {
  /** Every policy this limiter knows; names must be unique. */
  policies: readonly RateLimitPolicy[];
  /** Name of the policy used when none is named (default: the first policy). */
  defaultPolicy?: string;
  /**
   * The shared Redis connection and the failover guarding it (`connectRedis()`'s). The client must
   * not have its own `keyPrefix`. Absent: memory only, each instance enforcing its share alone.
   */
  redis?: { client: Redis; failover: Failover };
  /** Unique per process (default a random UUID); names this instance in the live set. */
  instanceId?: string;
  /** Namespace of every Redis key (default `'bulwark:ratelimit:'`). */
  prefix?: string;
  /** How often this instance beats (default 2000); it stays live for 3 × this after a beat. */
  heartbeatIntervalMs?: number;
  /**
   * Instances assumed until a heartbeat has answered (default 1). Set it to the usual replica
   * count so that an instance booting while Redis is down does not admit the whole limit.
   */
  initialInstances?: number;
  /** Registry for `bulwark_ratelimit_decisions_total` (none: no metrics). */
  registry?: Registry;
  /** Refused keys tracked per policy for {@link RateLimiter.topOffenders} (default 100). */
  offenderCapacity?: number;
  /** Clock in epoch milliseconds that places windows (default `Date.now`). */
  now?: () => number;
}

interface PolicyState {
  policy: RateLimitPolicy;
  /** This instance's share, used while Redis is unavailable (or absent). */
  memory: WindowCounter;
  redis: RateLimiterRedis | undefined;
}

const POLICY_NAME = /^[\w.:-]{1,64}$/;

/**
 * Creates a rate limiter with fixed, clock-aligned windows. With `redis`, every instance counts in
 * one Redis counter per key and window (rate-limiter-flexible's atomic `RateLimiterRedis`) through
 * the failover; when Redis fails or is too slow, the failover answers from an in-memory counter
 * (`RateLimiterMemory`) sized to this instance's share, `ceil(limit / liveInstances)`, where
 * `liveInstances` comes from heartbeats made while Redis was up. So N instances together admit
 * about `limit` during an outage, not N × `limit`. Heartbeats start at once on unref'd timers.
 *
 * Throws `BWK_ERR_RATELIMIT_OPTIONS` for invalid policies. Nothing connects here: the client is
 * the caller's, and its lifecycle too.
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  return new FailoverRateLimiter(options);
}

class FailoverRateLimiter implements RateLimiter {
  readonly defaultPolicy: RateLimitPolicy;
  readonly #states = new Map<string, PolicyState>();
  readonly #failover: Failover | undefined;
  readonly #instances: InstanceCounter | undefined;
  readonly #initialInstances: number;
  readonly #metrics: RateLimitMetrics | undefined;
  readonly #offenders: TopOffenders;
  readonly #now: () => number;

  constructor(opts: RateLimiterOptions) {
    const prefix = opts.prefix ?? 'bulwark:ratelimit:';
    if (prefix === '') invalid('prefix must not be empty');
    if (opts.policies.length === 0) invalid('at least one policy is required');
    this.#initialInstances = Math.max(1, Math.floor(opts.initialInstances ?? 1));
    for (const policy of opts.policies) {
      validatePolicy(policy);
      if (this.#states.has(policy.name)) invalid(`duplicate policy name ${policy.name}`);
      const frozen = Object.freeze({ name: policy.name, limit: policy.limit, windowMs: policy.windowMs });
      this.#states.set(policy.name, {
        policy: frozen,
        memory: new WindowCounter(share(policy.limit, this.#initialInstances)),
        redis:
          opts.redis === undefined
            ? undefined
            : new RateLimiterRedis({
                storeClient: opts.redis.client,
                points: policy.limit,
                // Whole seconds: rate-limiter-flexible sets no expiry below one second. The
                // window itself comes from the key, so the key merely outlives its window.
                duration: Math.max(1, Math.ceil(policy.windowMs / 1000)),
                keyPrefix: `${prefix}p:${policy.name}`,
                // Fail at once while disconnected instead of waiting out the failover's deadline.
                rejectIfRedisNotReady: true,
              }),
      });
    }
    const first = opts.policies[0]?.name ?? '';
    this.defaultPolicy = this.policy(opts.defaultPolicy ?? first);
    this.#failover = opts.redis?.failover;
    this.#metrics = opts.registry === undefined ? undefined : new RateLimitMetrics(opts.registry);
    this.#offenders = new TopOffenders(opts.offenderCapacity);
    this.#now = opts.now ?? Date.now;
    if (opts.redis !== undefined) {
      this.#instances = new InstanceCounter({
        client: opts.redis.client,
        failover: opts.redis.failover,
        key: `${prefix}instances`,
        instanceId: opts.instanceId ?? randomUUID(),
        intervalMs: opts.heartbeatIntervalMs ?? 2000,
        initial: this.#initialInstances,
        onChange: (count) => this.#resize(count),
      });
      this.#instances.start();
    }
  }

  get liveInstances(): number {
    return this.#instances?.count ?? this.#initialInstances;
  }

  enabled = true;

  policy(name?: string): RateLimitPolicy {
    if (name === undefined) return this.defaultPolicy;
    const state = this.#states.get(name);
    if (state === undefined) invalid(`unknown policy ${JSON.stringify(name)}`);
    return state.policy;
  }

  consumeNow(key: string, points = 1, policyName?: string): RateLimitDecision | undefined {
    const state = this.#state(policyName, points);
    if (this.enabled && state.redis !== undefined && this.#failover?.mode === 'primary') return undefined;
    return this.#inMemory(state, key, points);
  }

  async consume(key: string, points = 1, policyName?: string): Promise<RateLimitDecision> {
    const state = this.#state(policyName, points);
    const redis = state.redis;
    const failover = this.#failover;
    if (!this.enabled || redis === undefined || failover === undefined)
      return this.#inMemory(state, key, points);
    const { windowMs } = state.policy;
    const now = this.#now();
    const window = Math.floor(now / windowMs);
    const resetMs = (window + 1) * windowMs - now;
    const decision = await failover.execute(
      () => count(redis, state.policy, `${key}:${window}`, points, resetMs),
      () => fromMemory(state, key, points, window, resetMs),
    );
    // Counted in memory too: a switch to memory mid-window carries on from this instance's count.
    if (decision.source === 'redis') state.memory.note(key, points, window);
    this.#record(decision, key);
    return decision;
  }

  #state(policyName: string | undefined, points: number): PolicyState {
    const state = this.#states.get(policyName ?? this.defaultPolicy.name);
    if (state === undefined) invalid(`unknown policy ${JSON.stringify(policyName)}`);
    if (!Number.isInteger(points) || points < 1) invalid(`points must be a positive integer, not ${points}`);
    return state;
  }

  /** Decides on this instance's in-memory counter (Redis absent or unavailable), or admits while off. */
  #inMemory(state: PolicyState, key: string, points: number): RateLimitDecision {
    const { windowMs, limit, name } = state.policy;
    const now = this.#now();
    const window = Math.floor(now / windowMs);
    const resetMs = (window + 1) * windowMs - now;
    if (!this.enabled)
      return { allowed: true, limit, remaining: limit, resetMs, policy: name, source: 'off' };
    const decision = fromMemory(state, key, points, window, resetMs);
    this.#record(decision, key);
    return decision;
  }

  #record(decision: RateLimitDecision, key: string): void {
    this.#metrics?.observe(decision);
    if (!decision.allowed) this.#offenders.record(decision.policy, key);
  }

  topOffenders(n?: number, policy?: string): Offender[] {
    return this.#offenders.top(n, policy);
  }

  heartbeat(): Promise<number> {
    return this.#instances?.beat() ?? Promise.resolve(this.liveInstances);
  }

  async close(): Promise<void> {
    await this.#instances?.close();
  }

  #resize(instances: number): void {
    for (const state of this.#states.values()) state.memory.points = share(state.policy.limit, instances);
  }
}

/**
 * Consumes on the shared Redis counter and turns its answer into a decision. rate-limiter-flexible
 * rejects with a RateLimiterRes when the points do not fit: that is a refusal, not a failure, so it
 * must resolve here or the failover would count it against Redis. Real errors still reject.
 */
function count(
  limiter: RateLimiterRedis,
  policy: RateLimitPolicy,
  slot: string,
  points: number,
  resetMs: number,
): Promise<RateLimitDecision> {
  return limiter.consume(slot, points).then(
    (res) => decide(policy, res.remainingPoints, resetMs, 'redis', true),
    (rejection: unknown) => {
      // Our own import of the class, so instanceof is safe here (unlike for errors crossing packages).
      if (rejection instanceof RateLimiterRes)
        return decide(policy, rejection.remainingPoints, resetMs, 'redis', false);
      throw rejection;
    },
  );
}

/** Counts on this instance's share in memory, at once. */
function fromMemory(
  state: PolicyState,
  key: string,
  points: number,
  window: number,
  resetMs: number,
): RateLimitDecision {
  const total = state.memory.add(key, points, window);
  const allowed = total <= state.memory.points;
  return decide(state.policy, state.memory.points - total, resetMs, 'memory', allowed);
}

function decide(
  policy: RateLimitPolicy,
  remaining: number,
  resetMs: number,
  source: DecisionSource,
  allowed: boolean,
): RateLimitDecision {
  const decision: RateLimitDecision = {
    allowed,
    limit: policy.limit,
    remaining: Math.max(0, remaining),
    resetMs,
    policy: policy.name,
    source,
  };
  if (!allowed) decision.retryAfterMs = resetMs;
  return decision;
}

/** This instance's part of `limit` when `instances` share it; rounded up so no key is starved. */
function share(limit: number, instances: number): number {
  return Math.ceil(limit / Math.max(1, instances));
}

function validatePolicy(policy: RateLimitPolicy): void {
  if (typeof policy.name !== 'string' || !POLICY_NAME.test(policy.name)) {
    invalid(`policy name ${JSON.stringify(policy.name)} must match ${String(POLICY_NAME)}`);
  }
  for (const field of ['limit', 'windowMs'] as const) {
    const value = policy[field];
    if (!Number.isInteger(value) || value < 1) {
      invalid(`policy ${policy.name}: ${field} must be a positive integer, not ${value}`);
    }
  }
}

function invalid(detail: string): never {
  throw bulwarkError('BWK_ERR_RATELIMIT_OPTIONS', { detail });
}

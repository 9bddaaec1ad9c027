/**
 * A named quota: at most `limit` points per key in each fixed window of `windowMs` milliseconds.
 * Windows are aligned to the clock (`floor(now / windowMs)`), so every instance agrees on where a
 * window starts as long as their clocks agree.
 */
export interface RateLimitPolicy {
  /** Stable name used in keys, headers and metrics: letters, digits and `_ . : -`, at most 64. */
  readonly name: string;
  /** Points allowed per key per window (a positive integer). */
  readonly limit: number;
  /** Window length in milliseconds (a positive integer). */
  readonly windowMs: number;
}

/** Where a decision was counted: the shared Redis counter, or this instance's in-memory share. */
/** Where a decision was made; `off` while rate limiting is switched off (flag `bulwark.ratelimit`). */
export type DecisionSource = 'redis' | 'memory' | 'off';

/** The answer to one {@link RateLimiter.consume}. */
export interface RateLimitDecision {
  /** Whether the points fitted in the quota. Refused points still count in the window. */
  allowed: boolean;
  /** The policy's `limit` (the advertised quota, also while serving from memory). */
  limit: number;
  /**
   * Points left in this window, never negative. From Redis: of the global quota. From memory: of
   * this instance's share (`ceil(limit / liveInstances)`), so a client never sees more than it gets.
   */
  remaining: number;
  /** Milliseconds until the current window ends and the count restarts (1 … windowMs). */
  resetMs: number;
  /** Only on refusals: milliseconds until retrying can succeed (the end of the window). */
  retryAfterMs?: number;
  /** The name of the policy that decided. */
  policy: string;
  source: DecisionSource;
}

/** One entry of the top-offenders list. */
export interface Offender {
  policy: string;
  /** The key as given to `consume` (the plugin passes `ip:…`, `key:<sha-256>`, `user:…`). */
  key: string;
  /** Refusals counted for the key: an upper bound, exact when `overcount` is 0. */
  count: number;
  /** How much `count` may overstate (space-saving inherits the count of the key it evicted). */
  overcount: number;
}

/**
 * A rate limiter over named policies. Implementations never throw for infrastructure reasons:
 * while the shared backend is unavailable they answer from memory. They throw
 * `BWK_ERR_RATELIMIT_OPTIONS` only for programming errors (an unknown policy, bad points).
 */
export interface RateLimiter {
  /** The policy used when `consume` names none. */
  readonly defaultPolicy: RateLimitPolicy;
  /**
   * Switch (flag `bulwark.ratelimit`): while false, `consume` admits everything without counting
   * (source `off`) and the Fastify plugin neither limits nor sends rate-limit headers.
   */
  enabled: boolean;
  /**
   * Instances sharing the limit, as last learned from heartbeats (at least 1). Kept through an
   * outage; sizes the in-memory share.
   */
  readonly liveInstances: number;
  /** The named policy (default: the default policy); throws `BWK_ERR_RATELIMIT_OPTIONS` if unknown. */
  policy(name?: string): RateLimitPolicy;
  /**
   * Counts `points` (a positive integer, default 1) against `key` under `policy` (default the
   * default policy) and says whether they fit. Resolves within the failover's deadline when Redis
   * is slow or down; never rejects for a Redis failure.
   */
  consume(key: string, points?: number, policy?: string): Promise<RateLimitDecision>;
  /**
   * {@link consume} without a promise when the decision needs no I/O (no Redis, Redis unavailable,
   * or rate limiting off): the decision, counted; `undefined` when it must go to Redis (then
   * call `consume`). Throws `BWK_ERR_RATELIMIT_OPTIONS` for an unknown policy or bad points.
   */
  consumeNow(key: string, points?: number, policy?: string): RateLimitDecision | undefined;
  /** The `n` (default 10) keys refused most often, highest first, of one policy or of all. */
  topOffenders(n?: number, policy?: string): Offender[];
  /**
   * Beats once now and resolves with the live-instance count afterwards (unchanged when Redis is
   * unavailable or absent). Never rejects. Heartbeats also run on their own timer.
   */
  heartbeat(): Promise<number>;
  /** Stops the heartbeat timer and withdraws this instance from the live set (best effort). */
  close(): Promise<void>;
}

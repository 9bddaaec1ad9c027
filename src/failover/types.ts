/** Which side a degradable dependency is served from. */
export type DependencyMode = 'primary' | 'fallback';

/** Why the dependency is on its current side. */
export type ModeReason =
  /** Primary answered its probe at start, or recovered. */
  | 'healthy'
  /** Not probed yet. */
  | 'starting'
  /** Primary operations kept failing or missing their deadline (`failureThreshold`, `failureStreakMs`). */
  | 'failures'
  /** The start-up probe failed: booted on the fallback. */
  | 'unavailable'
  /** The kill switch forces the fallback. */
  | 'forced';

/** Timers the engine uses; tests pass their own to drive time. */
export interface FailoverTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Work accepted on the fallback that waits to reach the primary once it is back (a cache's journal
 * of writes, a queue's spool of jobs): registered by the part that keeps it, shown by the admin API.
 */
export interface BacklogSource {
  /** What waits, for people: `cache journal (default)`, `queue spool`. */
  name: string;
  /** How many records wait (one cheap read of the store). */
  pending(): Promise<number>;
}

/** One backlog as read now: `pending` is null when it could not be read, with the error's code. */
export interface Backlog {
  name: string;
  pending: number | null;
  error?: string;
}

/** A mode change, as given to listeners. */
export interface ModeChange {
  dependency: string;
  from: DependencyMode;
  to: DependencyMode;
  reason: ModeReason;
  /** Milliseconds since the epoch (the engine's clock). */
  at: number;
  /** Required healthy streak (ms) before the next failback, after this change. */
  requiredStreakMs: number;
}

/** Options of a {@link Failover}. Times are in milliseconds. */
export interface FailoverOptions {
  /** Dependency name in logs, metrics and health (`redis`, `postgres`, ...). */
  name: string;
  /**
   * Active health probe of the primary (e.g. PING). Rejecting, or not settling within
   * `probeTimeoutMs`, counts as a failed probe; the signal aborts on timeout.
   */
  probe: (signal: AbortSignal) => Promise<unknown>;
  /** Deadline of one primary operation; past it the fallback answers (default 25). */
  deadlineMs?: number;
  /** Consecutive failed or late primary operations that switch to the fallback (default 3)... */
  failureThreshold?: number;
  /**
   * ...provided no primary operation has succeeded for at least this long (default 50). A server
   * that is down succeeds at nothing; a busy one whose replies are sometimes late keeps succeeding.
   */
  failureStreakMs?: number;
  /** Probe interval while on the fallback (default 250). */
  probeIntervalMs?: number;
  /** Probe timeout (default 200). */
  probeTimeoutMs?: number;
  /** Failback needs this many successes among the last `recoverWindow` probes (default 3)... */
  recoverSuccesses?: number;
  /** ...out of this many (default 4). */
  recoverWindow?: number;
  /**
   * A failback followed by a failure within this window is a flap (default 30 000). Each flap
   * multiplies the healthy streak required before the next failback by 4, up to `maxStreakMs`;
   * a full window on the primary without a failure forgives the flaps.
   */
  flapWindowMs?: number;
  /** Ceiling of the required healthy streak (default 120 000). */
  maxStreakMs?: number;
  /** Whether an error from a primary operation counts against the primary (default: every error). */
  isFailure?: (error: unknown) => boolean;
  timers?: FailoverTimers;
}

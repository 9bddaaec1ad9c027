// The circuit breaker of an upstream is cockatiel's (its CircuitBreakerPolicy: open, one half-open
// trial call, close on its success), fed by a breaker that opens on either of two signals.
import {
  circuitBreaker,
  CircuitState,
  ConsecutiveBreaker,
  handleAll,
  SamplingBreaker,
  type CircuitBreakerPolicy,
  type IBreaker,
} from 'cockatiel';

/** When an upstream's breaker opens, and for how long. Times in ms. */
export interface BreakerOptions {
  /** Consecutive failed calls that open it (default 5). */
  consecutiveFailures?: number;
  /** ...or this share of failed calls over `windowMs`, in (0, 1) (default 0.5)... */
  failureRate?: number;
  /** ...over this sliding window (default 10 000)... */
  windowMs?: number;
  /**
   * ...once the window holds at least this many calls per second (default 2: 20 calls over the
   * default window), so that two failures out of three calls at night do not open it.
   */
  minimumRps?: number;
  /**
   * How long it stays open before one trial call may go (default 5 000). The trial's success
   * closes it; its failure opens it again for as long.
   */
  halfOpenAfterMs?: number;
}

/** How long a breaker stays open before a trial call, by default (ms). */
export const DEFAULT_HALF_OPEN_AFTER_MS = 5_000;

/** An upstream's breaker as shown in health, metrics and the admin API. */
export type BreakerState = 'closed' | 'half-open' | 'open';

/**
 * Opens on `consecutiveFailures` in a row OR on a failure rate above `failureRate` over the window
 * (cockatiel's ConsecutiveBreaker and SamplingBreaker, both fed every result): the first catches an
 * upstream that is down at low traffic, the second one that fails half the time at high traffic,
 * which never makes a long streak.
 */
class EitherBreaker implements IBreaker {
  readonly #consecutive: ConsecutiveBreaker;
  readonly #sampling: SamplingBreaker;

  constructor(consecutive: ConsecutiveBreaker, sampling: SamplingBreaker) {
    this.#consecutive = consecutive;
    this.#sampling = sampling;
  }

  get state(): unknown {
    return { consecutive: this.#consecutive.state, sampling: this.#sampling.state };
  }

  set state(value: unknown) {
    const { consecutive, sampling } = value as { consecutive: unknown; sampling: unknown };
    this.#consecutive.state = consecutive as number;
    this.#sampling.state = sampling;
  }

  success(state: CircuitState): void {
    this.#consecutive.success();
    this.#sampling.success(state);
  }

  failure(state: CircuitState): boolean {
    // Both are told of every failure, so each keeps its own count whichever one opens.
    const streak = this.#consecutive.failure();
    const rate = this.#sampling.failure(state);
    return streak || rate;
  }
}

/**
 * A circuit breaker for one upstream, with `options`' defaults: every error thrown by the function
 * it executes counts as a failure. cockatiel reads the time with `Date.now()` (tests fake it).
 */
export function createBreaker(options: BreakerOptions = {}): CircuitBreakerPolicy {
  return circuitBreaker(handleAll, {
    halfOpenAfter: options.halfOpenAfterMs ?? DEFAULT_HALF_OPEN_AFTER_MS,
    breaker: new EitherBreaker(
      new ConsecutiveBreaker(options.consecutiveFailures ?? 5),
      new SamplingBreaker({
        threshold: options.failureRate ?? 0.5,
        duration: options.windowMs ?? 10_000,
        minimumRps: options.minimumRps ?? 2,
      }),
    ),
  });
}

/**
 * The state of `breaker` for people and metrics. An open breaker whose `halfOpenAfterMs` has passed
 * still reads `open` until the next call (cockatiel moves to half-open when a call comes).
 */
export function breakerState(breaker: CircuitBreakerPolicy): BreakerState {
  switch (breaker.state) {
    case CircuitState.Closed:
      return 'closed';
    case CircuitState.HalfOpen:
      return 'half-open';
    case CircuitState.Open:
    case CircuitState.Isolated:
      return 'open';
  }
}

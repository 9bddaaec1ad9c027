// Degradation of one upstream lives here, in one place: kill switch, adaptive throttle, breaker,
// deadline, retries within the budget, the metric and the last failure. The transports (undici for
// bulwark.http, the caller's function for protect) only make one attempt and throw.
import { performance } from 'node:perf_hooks';
import { isBrokenCircuitError, type CircuitBreakerPolicy } from 'cockatiel';
import { bulwarkError, isBulwarkError, type ErrorCode } from '../errors/index.js';
import { breakerState, createBreaker, DEFAULT_HALF_OPEN_AFTER_MS } from './breaker.js';
import { RetryBudget } from './budget.js';
import type { OutboundMetrics } from './metrics.js';
import { AdaptiveThrottle } from './throttle.js';
import type { CallOutcome, UpstreamOptions, UpstreamView } from './types.js';

/** Time, chance and sleep of the guards: tests drive them. */
export interface GuardClock {
  /** Milliseconds, for the windows of the retry budget and the throttle. */
  now: () => number;
  /** In [0, 1): the throttle's draws and the backoff's jitter. */
  random: () => number;
  /** Resolves after `ms`, rejects when `signal` aborts. */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** What one attempt gave: its value, and whether the upstream accepted it (a 429 is answered, not accepted). */
export interface Attempted<T> {
  value: T;
  accepted: boolean;
}

/** One call as the guard runs it. */
export interface GuardedCall<T> {
  /** One attempt; throws on failure. Its signal aborts at the call's deadline. */
  attempt(signal: AbortSignal, remainingMs: number): Promise<Attempted<T>>;
  deadlineMs: number | undefined;
  /** Retry failed attempts (within the budget). */
  idempotent: boolean;
  fallback?: ((error: Error) => T | Promise<T>) | undefined;
}

const OUTCOME_OF: Partial<Record<ErrorCode, CallOutcome>> = {
  BWK_ERR_OUTBOUND_OPEN: 'open',
  BWK_ERR_OUTBOUND_DEADLINE: 'deadline',
  BWK_ERR_OUTBOUND_THROTTLED: 'throttled',
  BWK_ERR_OUTBOUND_KILLED: 'killed',
};

/**
 * A call's deadline: its signal aborts and `expired` rejects, with the same coded error, at `ms`.
 * Waits race `expired` (one promise per call) rather than each adding and removing an abort
 * listener: on Node's EventTarget those two were ~1 µs of every guarded call's ~9.
 */
function deadline(upstream: string, ms: number) {
  const controller = new AbortController();
  let expire!: (error: Error) => void;
  const expired = new Promise<never>((_, reject) => (expire = reject));
  // Handled here: a call that ends before its deadline never looks at it.
  expired.catch(() => undefined);
  const timer = setTimeout(() => {
    const error = bulwarkError('BWK_ERR_OUTBOUND_DEADLINE', { upstream, deadlineMs: ms });
    controller.abort(error);
    expire(error);
  }, ms);
  return {
    signal: controller.signal,
    /** `promise`, or the deadline's error as soon as it passes (the promise's later end is ignored). */
    race: <T>(promise: Promise<T>): Promise<T> => Promise.race([promise, expired]),
    clear: () => clearTimeout(timer),
  };
}

/** The guard of one upstream (or one name given to `protect()`). */
export class UpstreamGuard {
  readonly name: string;
  readonly origin: string | null;
  /** The kill switch: calls fail with `BWK_ERR_OUTBOUND_KILLED` (or their fallback) while true. */
  killed = false;
  readonly #breaker: CircuitBreakerPolicy;
  readonly #halfOpenAfterMs: number;
  /** When the breaker last opened (`Date.now()`, cockatiel's clock). */
  #openedAt = 0;
  readonly #throttle: AdaptiveThrottle | undefined;
  readonly #budget: RetryBudget;
  readonly #deadlineMs: number;
  readonly #maxRetries: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #metrics: OutboundMetrics;
  readonly #clock: GuardClock;
  readonly #calls: Record<CallOutcome, number> = {
    success: 0,
    failure: 0,
    deadline: 0,
    open: 0,
    throttled: 0,
    killed: 0,
  };
  #retries = 0;
  #lastFailure: UpstreamView['lastFailure'] = null;

  constructor(name: string, options: UpstreamOptions, metrics: OutboundMetrics, clock: GuardClock) {
    this.name = name;
    this.origin = options.origin ?? null;
    this.#breaker = createBreaker(options.breaker);
    this.#halfOpenAfterMs = options.breaker?.halfOpenAfterMs ?? DEFAULT_HALF_OPEN_AFTER_MS;
    this.#breaker.onBreak(() => (this.#openedAt = Date.now()));
    this.#throttle =
      options.throttle === false
        ? undefined
        : new AdaptiveThrottle(options.throttle ?? {}, clock.now, clock.random);
    this.#budget = new RetryBudget(options.retry ?? {}, clock.now);
    this.#deadlineMs = options.deadlineMs ?? 2_000;
    this.#maxRetries = options.retry?.maxRetries ?? 2;
    this.#baseDelayMs = options.retry?.baseDelayMs ?? 50;
    this.#maxDelayMs = options.retry?.maxDelayMs ?? 1_000;
    this.#metrics = metrics;
    this.#clock = clock;
  }

  /**
   * Runs `call`: resolves with its value, or rejects with a coded `BWK_ERR_OUTBOUND_*` error (or
   * resolves with the fallback's answer to it). Counted once, whatever the attempts.
   */
  async run<T>(call: GuardedCall<T>): Promise<T> {
    const started = performance.now();
    try {
      const value = await this.#attempts(call);
      this.#end('success', started);
      return value;
    } catch (error) {
      const coded = isBulwarkError(error)
        ? error
        : bulwarkError(
            'BWK_ERR_OUTBOUND_FAILED',
            { upstream: this.name, detail: String(error) },
            { cause: error },
          );
      const outcome = OUTCOME_OF[coded.code] ?? 'failure';
      this.#end(outcome, started);
      if (outcome === 'failure' || outcome === 'deadline')
        this.#lastFailure = { at: Date.now(), code: coded.code, message: coded.message };
      if (call.fallback === undefined) throw coded;
      return call.fallback(coded);
    }
  }

  async #attempts<T>(call: GuardedCall<T>): Promise<T> {
    if (this.killed) throw bulwarkError('BWK_ERR_OUTBOUND_KILLED', { upstream: this.name });
    const deadlineMs = call.deadlineMs ?? this.#deadlineMs;
    const deadlineAt = performance.now() + deadlineMs;
    const due = deadline(this.name, deadlineMs);
    const { signal } = due;
    this.#budget.noteCall();
    let failed: Error | undefined;
    try {
      for (let retry = 0; ; retry++) {
        // Calls the open breaker would refuse are refused before the throttle counts them: they
        // never reach the upstream, and counting them would keep the throttle shut after it is back.
        const state = this.state();
        if (state === 'open' && Date.now() - this.#openedAt < this.#halfOpenAfterMs)
          throw failed ?? bulwarkError('BWK_ERR_OUTBOUND_OPEN', { upstream: this.name });
        if (this.#throttle?.admit() === false) {
          // A retry the throttle refuses ends the call with the failure that asked for it.
          if (failed !== undefined) throw failed;
          this.#metrics.throttled(this.name);
          throw bulwarkError('BWK_ERR_OUTBOUND_THROTTLED', { upstream: this.name });
        }
        // Whether the attempt reached the upstream (an open breaker refuses it before).
        let sent = false;
        // A closed breaker runs the attempt at once (raced against the deadline); a half-open one
        // may first wait for its probe, so that wait races the deadline too.
        try {
          const executed = this.#breaker.execute(() => {
            sent = true;
            return due.race(call.attempt(signal, deadlineAt - performance.now()));
          });
          const attempted = await (state === 'closed' ? executed : due.race(executed));
          this.#throttle?.record(attempted.accepted);
          return attempted.value;
        } catch (error) {
          if (sent) this.#throttle?.record(false);
          if (signal.aborted) throw signal.reason as Error;
          if (isBrokenCircuitError(error))
            throw bulwarkError('BWK_ERR_OUTBOUND_OPEN', { upstream: this.name });
          failed = bulwarkError(
            'BWK_ERR_OUTBOUND_FAILED',
            { upstream: this.name, detail: error instanceof Error ? error.message : String(error) },
            { cause: error },
          );
        }
        // Full jitter: a random delay below a ceiling that doubles each retry, so that callers who
        // failed together do not come back together.
        const delay = this.#clock.random() * Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** retry);
        const retryable =
          call.idempotent && retry < this.#maxRetries && deadlineAt - performance.now() > delay;
        if (!retryable || !this.#budget.tryRetry()) throw failed;
        this.#retries++;
        this.#metrics.retry(this.name);
        await this.#clock.sleep(delay, signal).catch(() => {
          throw signal.reason as Error;
        });
      }
    } finally {
      due.clear();
    }
  }

  #end(outcome: CallOutcome, started: number): void {
    this.#calls[outcome]++;
    this.#metrics.call(this.name, outcome, (performance.now() - started) / 1000);
  }

  /** The breaker's state now. */
  state(): ReturnType<typeof breakerState> {
    return breakerState(this.#breaker);
  }

  /** This upstream as the admin API shows it. */
  view(): UpstreamView {
    const counts = this.#throttle?.counts();
    return {
      name: this.name,
      origin: this.origin,
      breaker: this.state(),
      killed: this.killed,
      calls: { ...this.#calls },
      retries: this.#retries,
      throttle:
        counts === undefined || this.#throttle === undefined
          ? null
          : { ...counts, rejectProbability: this.#throttle.rejectProbability() },
      retryBudget: this.#budget.available(),
      lastFailure: this.#lastFailure,
    };
  }
}

import { SlidingCounts } from './window.js';

/** Options of a {@link RetryBudget}. */
export interface RetryBudgetOptions {
  /** Retries allowed per call made, over the window (default 0.1: retries ≤ 10% of calls). */
  ratio?: number;
  /** Length of the window in ms (default 10 000). */
  windowMs?: number;
  /**
   * Retries allowed in every window whatever the traffic (default 3), so that a service making a
   * few calls a minute can still retry one; 0 holds retries to exactly `ratio` × calls.
   */
  minRetries?: number;
}

/**
 * A retry budget, token-bucket style over a sliding window: every call deposits `ratio` of a token,
 * every retry withdraws one, and deposits expire with the window. So over any window, retries ≤
 * `ratio` × calls + `minRetries`: when the upstream fails for everyone, retries add at most that to
 * its load instead of multiplying it by the attempts per call.
 */
export class RetryBudget {
  readonly #counts: SlidingCounts<'calls' | 'retries'>;
  readonly #ratio: number;
  readonly #minRetries: number;

  constructor(options: RetryBudgetOptions, now: () => number) {
    this.#ratio = options.ratio ?? 0.1;
    this.#minRetries = options.minRetries ?? 3;
    this.#counts = new SlidingCounts(['calls', 'retries'], options.windowMs ?? 10_000, 10, now);
  }

  /** Records one call (a first attempt; retries are not calls). */
  noteCall(): void {
    this.#counts.add('calls');
  }

  /** Withdraws one retry: true when the budget had it (the retry may go), false when it is spent. */
  tryRetry(): boolean {
    if (this.available() < 1) return false;
    this.#counts.add('retries');
    return true;
  }

  /** Retries the budget holds now (may be fractional; a retry needs a whole one). */
  available(): number {
    const calls = this.#counts.sum('calls');
    return calls * this.#ratio + this.#minRetries - this.#counts.sum('retries');
  }
}

/** Options of {@link RestartPolicy}. */
export interface RestartPolicyOptions {
  /** Delay of the second restart in a row; it doubles for each further one. */
  initialMs: number;
  maxMs: number;
  /** An instance up at least this long ends the streak: its next crash restarts at once. */
  stableMs: number;
  /** More restarts than this within `windowMs` park the app. */
  maxRestarts: number;
  windowMs: number;
  /** [0, 1); replaced in tests. */
  random?: () => number;
}

/** What to do after an unexpected exit. */
export type RestartDecision =
  { action: 'restart'; delayMs: number; streak: number } | { action: 'park'; restartsInWindow: number };

/**
 * When to restart a crashed instance. The first crash after a stable run restarts at once (a
 * one-off crash costs no more than a plain respawn); each further crash in a row waits twice as
 * long (equal jitter: half fixed, half random, so a fleet does not restart in lockstep), up to
 * `maxMs`. More than `maxRestarts` within `windowMs` parks the app instead of looping.
 */
export class RestartPolicy {
  readonly #opts: RestartPolicyOptions;
  readonly #random: () => number;
  #streak = 0;
  #restarts: number[] = [];

  constructor(opts: RestartPolicyOptions) {
    this.#opts = opts;
    this.#random = opts.random ?? Math.random;
  }

  /** Decides after an exit at `now` of an instance that had been up `uptimeMs`. */
  next(now: number, uptimeMs: number): RestartDecision {
    if (uptimeMs >= this.#opts.stableMs) this.#streak = 0;
    this.#restarts = this.#restarts.filter((at) => now - at < this.#opts.windowMs);
    if (this.#restarts.length >= this.#opts.maxRestarts)
      return { action: 'park', restartsInWindow: this.#restarts.length };
    this.#restarts.push(now);
    this.#streak += 1;
    return { action: 'restart', delayMs: this.delayFor(this.#streak), streak: this.#streak };
  }

  /** The delay before restart number `streak` of a streak (1 = immediate). */
  delayFor(streak: number): number {
    if (streak <= 1) return 0;
    const base = Math.min(this.#opts.maxMs, this.#opts.initialMs * 2 ** (streak - 2));
    return Math.round(base / 2 + (this.#random() * base) / 2);
  }

  /** Restarts counted in the window ending at `now`. */
  restartsInWindow(now: number): number {
    return this.#restarts.filter((at) => now - at < this.#opts.windowMs).length;
  }

  /** Forgets the streak and the window (after a successful probe of a parked app, or a deploy). */
  reset(): void {
    this.#streak = 0;
    this.#restarts = [];
  }
}

import { SlidingCounts } from './window.js';

/** Options of an {@link AdaptiveThrottle}. */
export interface AdaptiveThrottleOptions {
  /**
   * How many requests per accepted one the client still sends (default 2, Google SRE's K): at 2 the
   * upstream sees about twice what it accepts, enough to notice that it has recovered.
   */
  k?: number;
  /** The window of requests and accepts, in ms (default 120 000: two minutes). */
  windowMs?: number;
  /**
   * Requests in the window below which nothing is rejected (default 10). The formula alone rejects
   * the next call half the time after one failure of a quiet client (1 request, 0 accepts: 1/2);
   * 0 applies it from the first request.
   */
  minRequests?: number;
}

/**
 * Client-side adaptive throttling (Google SRE book, "Handling Overload"): over the window, the
 * client counts the requests it attempted (those it rejected itself included) and the ones the
 * upstream accepted, and rejects a new one locally with probability
 * `max(0, (requests − K·accepts) / (requests + 1))` (once the window holds `minRequests`). While the upstream accepts everything the
 * probability is 0; while it refuses everything it climbs toward 1, so a refusing upstream is not
 * also sent the work it would refuse. Time comes from `now()`, chance from `random()` (tests drive both).
 */
export class AdaptiveThrottle {
  readonly #counts: SlidingCounts<'requests' | 'accepts'>;
  readonly #k: number;
  readonly #minRequests: number;
  readonly #random: () => number;

  constructor(options: AdaptiveThrottleOptions, now: () => number, random: () => number) {
    this.#k = options.k ?? 2;
    this.#minRequests = options.minRequests ?? 10;
    this.#counts = new SlidingCounts(['requests', 'accepts'], options.windowMs ?? 120_000, 24, now);
    this.#random = random;
  }

  /** The probability that the next request is rejected locally, in [0, 1). */
  rejectProbability(): number {
    const requests = this.#counts.sum('requests');
    if (requests < this.#minRequests) return 0;
    return Math.max(0, (requests - this.#k * this.#counts.sum('accepts')) / (requests + 1));
  }

  /**
   * Decides one attempt: true when it may go to the upstream (it is counted when it ends, with
   * {@link record}), false when it is rejected here (counted now, as a request not accepted).
   * Attempts in flight are not counted: a burst of calls to a healthy upstream would otherwise
   * look like requests without accepts until the first answers came back.
   */
  admit(): boolean {
    if (this.#random() >= this.rejectProbability()) return true;
    this.#counts.add('requests');
    return false;
  }

  /** Counts an admitted attempt that ended: `accepted` when the upstream accepted it (answered it, even with a client error). */
  record(accepted: boolean): void {
    this.#counts.add('requests');
    if (accepted) this.#counts.add('accepts');
  }

  /** Requests and accepts over the window ending now. */
  counts(): { requests: number; accepts: number } {
    return { requests: this.#counts.sum('requests'), accepts: this.#counts.sum('accepts') };
  }
}

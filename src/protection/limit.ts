// The adaptive concurrency limit: how many requests may run at once, learnt from their latency.
// Vegas-like (TCP Vegas, Netflix's concurrency-limits): by Little's law, the requests in flight times
// (1 − lowest latency / latency now) is how many of them are waiting rather than working (for the
// event loop, a pool, a lock). While fewer than `queueLow` wait, the limit grows by √limit; past
// `queueHigh` it shrinks by half the excess; in between it holds — the tolerance band that keeps
// noise from sawing it up and down. Hysteresis in time too: while requests are refused and its last
// move was down, it grows again only once three windows in a row say little waits (a single quiet
// window at several times its capacity made it probe up and come back down every few seconds);
// with nothing refused it grows at the first, as a closed loop of clients waiting in the queue
// needs. A shrink of less than one request, which changes no admission, is no move. The caller may
// give a window a room that stops a shrink (the shedder's room for a closed loop of clients).
// What it avoids of the known designs:
// - no pinning the limit low to re-measure the lowest latency (Envoy's adaptive concurrency): the
//   lowest latency comes from live traffic, a window's average, with a floor that rises slowly so a
//   lasting change of the service's speed is learnt;
// - no growth while requests are shed or time out (Netflix Gradient2 under steady timeouts): only
//   answered requests are samples, and the limit grows only while traffic fills half of it;
// - no collapse on a garbage-collection pause: a window with a long pause does not lower the limit;
// - no collapse in a saturated event loop: there a request's latency is the loop's turn, which
//   every request read makes longer, refused ones too, so Vegas would lower the limit without end
//   (a closed loop of 100 clients drove it to ~8 and half its requests were refused). The limit
//   never stays below twice the bandwidth-delay product (BBR's window): the best rate of answers
//   of the last 10 s times the lowest latency.

/** Options of {@link AdaptiveLimit}; every one has a default that needs no tuning per service. */
export interface AdaptiveLimitOptions {
  /** The limit before any sample (default 100). */
  initial?: number;
  /** Never below (default 4) or above (default 5 000). */
  min?: number;
  max?: number;
  /**
   * The tolerance band, in requests waiting per log10 of the limit (at least 1): the limit grows
   * while fewer than `queueLow` (default 3) wait and shrinks once more than `queueHigh` (default 6) do.
   */
  queueLow?: number;
  queueHigh?: number;
  /** Samples a window needs before it counts (default 8); a window also closes after 1 s with any. */
  minSamples?: number;
  /** How fast the lowest latency may rise towards the current one, per second (default 0.005). */
  floorRisePerSecond?: number;
  /** Weight of a new window in the smoothed latency (default 0.4). */
  smoothing?: number;
  /**
   * The limit never falls below this many times the bandwidth-delay product: the highest rate of
   * answers of the last 10 s times the lowest latency (default 2, as BBR's congestion window; 0: no
   * such floor).
   */
  bdpGain?: number;
}

/** How long the highest rate of answers is remembered (ms). */
const RATE_MEMORY_MS = 10_000;

/** Quiet windows in a row before a limit whose last move was down grows again while shedding. */
const GROW_AFTER_SHRINK_WINDOWS = 3;

/** What a window did to the limit. */
export type LimitMove = 'up' | 'down' | 'hold';

/** The adaptive limit; pure logic, driven by {@link AdaptiveLimit.update} with the caller's clock. */
export class AdaptiveLimit {
  /** The current limit (fractional; admission compares in-flight requests against it). */
  limit: number;
  /** The lowest window latency seen (ms), rising slowly: the baseline latency is measured against. */
  minRttMs = Number.POSITIVE_INFINITY;
  /** The smoothed latency of recent windows (ms), NaN before the first. */
  rttMs = Number.NaN;
  /** Changes of direction of the limit (up after down or down after up): a stable limit has few. */
  reversals = 0;
  readonly #min: number;
  readonly #max: number;
  readonly #queueLow: number;
  readonly #queueHigh: number;
  readonly #minSamples: number;
  readonly #floorRise: number;
  readonly #smoothing: number;
  readonly #bdpGain: number;
  /** The highest rate of answers (per ms) of a window in the last {@link RATE_MEMORY_MS}, and when. */
  #rateMax = 0;
  #rateMaxAt = Number.NEGATIVE_INFINITY;
  /** Requests waiting (not working) in the last window, by Little's law. */
  waiting = 0;
  #sum = 0;
  #count = 0;
  #maxInFlight = 0;
  #inFlightSum = 0;
  #admissions = 0;
  #windowStart: number | undefined;
  #lastUpdate: number | undefined;
  #lastMove: LimitMove = 'hold';
  /** Windows in a row in which the limit could grow (little waiting, filled, loop not hot). */
  #quietWindows = 0;

  constructor(options: AdaptiveLimitOptions = {}) {
    this.#min = options.min ?? 4;
    this.#max = options.max ?? 5000;
    this.limit = clamp(options.initial ?? 100, this.#min, this.#max);
    this.#queueLow = options.queueLow ?? 3;
    this.#queueHigh = options.queueHigh ?? 6;
    this.#minSamples = options.minSamples ?? 8;
    this.#floorRise = options.floorRisePerSecond ?? 0.005;
    this.#smoothing = options.smoothing ?? 0.4;
    this.#bdpGain = options.bdpGain ?? 2;
  }

  /**
   * The bandwidth-delay product's floor: requests that must be in flight to answer at the best rate
   * seen lately with the lowest latency. Latency in a saturated event loop comes from every request
   * it reads, refused ones too; below this floor a lower limit no longer shortens it, it only
   * refuses work the process has the time for.
   */
  get floor(): number {
    const floor = this.#bdpGain * this.#rateMax * this.minRttMs;
    return Number.isFinite(floor) ? floor : 0;
  }

  /** The latency of one admitted request that was answered (ms, from admission to its answer). */
  sample(latencyMs: number): void {
    this.#sum += latencyMs;
    this.#count += 1;
  }

  /** The requests in flight right after an admission: tells a limit the traffic fills from an idle one. */
  inFlight(count: number): void {
    if (count > this.#maxInFlight) this.#maxInFlight = count;
    this.#inFlightSum += count;
    this.#admissions += 1;
  }

  /**
   * Closes the window when it has enough samples and moves the limit. `gcPause`: a long pause of
   * the garbage collector happened in the window (its latencies say nothing about the limit: no
   * shrinking). `hot`: the event loop is saturated (utilisation and delay past their guards): no
   * growing, whatever the latency says. `shedding`: requests are being refused (the shedder's
   * curve): a limit whose last move was down grows only after {@link GROW_AFTER_SHRINK_WINDOWS}
   * quiet windows in a row. `room`: the caller's lowest limit for the window (the shedder's room
   * for a closed loop of clients): a shrink stops there; it never raises the limit.
   */
  update(
    nowMs: number,
    signals: { gcPause?: boolean; hot?: boolean; shedding?: boolean; room?: number } = {},
  ): LimitMove {
    this.#windowStart ??= nowMs;
    const elapsedS = this.#lastUpdate === undefined ? 0 : (nowMs - this.#lastUpdate) / 1000;
    if (this.#count === 0 || (this.#count < this.#minSamples && nowMs - this.#windowStart < 1000)) {
      if (this.#count === 0) this.#reset(nowMs);
      return 'hold';
    }
    const windowRtt = this.#sum / this.#count;
    const windowMs = nowMs - (this.#windowStart ?? nowMs);
    if (windowMs > 0) {
      const rate = this.#count / windowMs;
      if (rate >= this.#rateMax || nowMs - this.#rateMaxAt > RATE_MEMORY_MS) {
        this.#rateMax = rate;
        this.#rateMaxAt = nowMs;
      }
    }
    const filled = this.#maxInFlight >= this.limit / 2;
    const inFlight = this.#admissions === 0 ? this.#maxInFlight : this.#inFlightSum / this.#admissions;
    this.#reset(nowMs);
    this.rttMs = Number.isNaN(this.rttMs)
      ? windowRtt
      : this.rttMs + this.#smoothing * (windowRtt - this.rttMs);
    if (windowRtt < this.minRttMs) this.minRttMs = windowRtt;
    else this.minRttMs = Math.min(this.rttMs, this.minRttMs * (1 + this.#floorRise * elapsedS));
    this.waiting = inFlight * Math.max(0, 1 - this.minRttMs / this.rttMs);
    // Below the floor (a limit lowered while the process was still warming up, before its rate
    // was known): back up to it at once, unless the loop is saturated by this process's own work.
    const bdp = Math.min(this.floor, this.#max);
    if (this.limit < bdp && signals.hot !== true) return this.#move(bdp);
    // The caller's room (what a closed loop needs) stops a shrink, as the floor does; the room never
    // raises the limit.
    const least = Math.max(bdp, Math.min(signals.room ?? 0, this.#max));
    const scale = Math.max(1, Math.log10(this.limit));
    const high = this.#queueHigh * scale;
    if (this.waiting > high) {
      this.#quietWindows = 0;
      if (signals.gcPause === true) return 'hold';
      // Half the excess per window, at most half the limit: far over, it comes down in a few windows.
      const excess = (this.waiting - high) / 2;
      const lower = this.limit - Math.min(Math.max(1, excess), this.limit / 2);
      return this.#move(Math.max(lower, Math.min(this.limit, least)), 1);
    }
    const quiet = this.waiting < this.#queueLow * scale && filled && signals.hot !== true;
    this.#quietWindows = quiet ? this.#quietWindows + 1 : 0;
    const needed = this.#lastMove === 'down' && signals.shedding === true ? GROW_AFTER_SHRINK_WINDOWS : 1;
    if (quiet && this.#quietWindows >= needed) return this.#move(this.limit + Math.sqrt(this.limit));
    return 'hold';
  }

  #reset(nowMs: number): void {
    this.#sum = 0;
    this.#count = 0;
    this.#maxInFlight = 0;
    this.#inFlightSum = 0;
    this.#admissions = 0;
    this.#windowStart = nowMs;
    this.#lastUpdate = nowMs;
  }

  /** Moves the limit to `next` (within its bounds), unless that changes it by less than `minStep`. */
  #move(next: number, minStep = 0): LimitMove {
    const bounded = clamp(next, this.#min, this.#max);
    if (bounded === this.limit || Math.abs(bounded - this.limit) < minStep) return 'hold';
    const move: LimitMove = bounded > this.limit ? 'up' : 'down';
    if (this.#lastMove !== 'hold' && move !== this.#lastMove) this.reversals += 1;
    this.#lastMove = move;
    this.limit = bounded;
    return move;
  }
}

const clamp = (value: number, low: number, high: number) => Math.min(high, Math.max(low, value));

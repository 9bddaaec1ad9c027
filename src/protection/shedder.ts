// Admission of requests under load: who runs now, who waits a little, who is refused at once.
// Three classes, shed lowest first:
// - a curve of refusal probabilities per class, raised step by step while the service is
//   overloaded (sheddable first, default once sheddable is all refused; critical never by the
//   curve) and lowered more slowly once it is clear (hysteresis: the curve does not flap);
// - the adaptive concurrency limit (limit.ts), of which critical requests may use all and the
//   others all but a reserved share; in a window with nothing refused and a loop not hot it does
//   not shrink below the room a closed loop of clients needs (what the process held, less what
//   drains in time), since such clients stay in the process whatever the limit and only move from
//   running to waiting;
// - a short queue for requests admitted by the curve but over the limit, served by class, then
//   first-come (last-come once the queue is bad, as Facebook's adaptive LIFO does), with CoDel's
//   timeouts: a wait longer than 100 ms, or 5 ms once the queue has been bad for 100 ms, is
//   refused rather than served late. Bad, as CoDel judges a queue by its waits, not its length:
//   for 100 ms not empty and no waiter served first-come within the 5 ms target. Past its room the
//   queue still takes a request while it is good, the curve refuses no default request and the
//   process holds fewer than it has held before (a closed loop again). A waiter whose client left,
//   or whose deadline passed, is dropped before it runs.
import { AdaptiveLimit, type LimitMove } from './limit.js';
import {
  PRIORITIES,
  SHED_REASONS,
  type Admission,
  type LoopSignals,
  type ShedderCounts,
  type ShedderOptions,
  type ShedderState,
  type ShedReason,
  type Waiter,
} from './types.js';

/** Admission control over one process's requests; pure logic on an injected clock. */
export class Shedder {
  /** Off: every request is admitted uncounted (the tool flag `bulwark.protection`). */
  enabled = true;
  inFlight = 0;
  readonly adaptive: AdaptiveLimit;
  readonly refusal = [0, 0, 0];
  readonly counts: ShedderCounts = {
    admitted: [0, 0, 0],
    completed: [0, 0, 0],
    shed: PRIORITIES.map(
      () => Object.fromEntries(SHED_REASONS.map((r) => [r, 0])) as Record<ShedReason, number>,
    ),
  };
  readonly #queues: Waiter[][] = [[], [], []];
  #queued = 0;
  /**
   * The last time the queue was good (CoDel): empty, or a waiter served first-come within the
   * target. A queue that stands but serves its waiters within the target is no overload (a closed
   * loop of clients keeps one standing at full speed); one whose every waiter waited longer for an
   * interval is.
   */
  #goodAt: number;
  #dropsThisTick = 0;
  #refusedThisTick = 0;
  /** The most requests held at once (in flight and waiting), remembered with a slow decay. */
  #held = 0;
  #heldThisTick = 0;
  #overloaded = false;
  /** Completions per second, smoothed: how fast the queue drains (for Retry-After). */
  #drainRate = 0;
  #completedThisTick = 0;
  #admittedThisTick = 0;
  #lastTick: number;
  readonly #reserve: number;
  readonly #clientShare: number | undefined;
  /** Slots held per client (with per-client fairness). */
  readonly #clients = new Map<string, number>();
  readonly #queueFactor: number;
  readonly #target: number;
  readonly #interval: number;
  readonly #hotUtilisation: number;
  readonly #hotDelayMs: number;
  readonly #raise: number;
  readonly #fall: number;
  readonly now: () => number;
  readonly #random: () => number;

  constructor(options: ShedderOptions = {}) {
    this.adaptive = new AdaptiveLimit(options.limit);
    this.#reserve = options.criticalReserve ?? 0.2;
    this.#clientShare = options.clientShare;
    this.#queueFactor = options.queueFactor ?? 1;
    this.#target = options.queueTargetMs ?? 5;
    this.#interval = options.queueIntervalMs ?? 100;
    this.#hotUtilisation = options.hotUtilisation ?? 0.9;
    this.#hotDelayMs = options.hotDelayMs ?? 50;
    this.#raise = options.raiseStep ?? 0.05;
    this.#fall = options.fallStep ?? 0.02;
    this.now = options.now ?? (() => performance.now());
    this.#random = options.random ?? Math.random;
    this.#goodAt = this.now();
    this.#lastTick = this.#goodAt;
  }

  /** Requests refused or dropped since the start, every class and reason. */
  get shedTotal(): number {
    let total = 0;
    for (const byReason of this.counts.shed) for (const reason of SHED_REASONS) total += byReason[reason];
    return total;
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.#queued;
  }

  /**
   * Decides for a request of class `rank` (0 critical, 1 default, 2 sheddable): `admitted` (it is
   * in flight: call {@link release} when answered), `queued` (call {@link enqueue} with its waiter),
   * or the reason it is refused now.
   */
  admit(rank: number, client?: string): Admission {
    const refusal = this.refusal[rank] ?? 0;
    if (refusal > 0 && this.#random() < refusal) return this.#refuse(rank, 'overload');
    if (client !== undefined && this.#overClientShare(client)) return this.#refuse(rank, 'client-share');
    if (this.inFlight < this.#cap(rank) && (this.#queued === 0 || !this.#waitingAtOrAbove(rank))) {
      this.#start(rank, client);
      this.#noteHeld();
      return 'admitted';
    }
    if (this.#queued < this.#maxQueue() || this.#heldBefore()) return 'queued';
    // Full: a more important request takes the place of the newest of the least important waiting.
    for (let lower = PRIORITIES.length - 1; lower > rank; lower--) {
      const victim = this.#queues[lower]?.pop();
      if (victim === undefined) continue;
      this.#queued -= 1;
      this.#drop(victim, 'queue-full');
      return 'queued';
    }
    return this.#refuse(rank, 'queue-full');
  }

  /** Queues a request `admit` answered `queued` for. */
  enqueue(waiter: Waiter): void {
    this.#queues[waiter.rank]?.push(waiter);
    this.#queued += 1;
    this.#noteHeld();
  }

  /**
   * An admitted request is done. `latencyMs`: from admission to its answer, when it was answered
   * below 500 (a failure or a client that left is no latency sample).
   */
  release(rank: number, latencyMs?: number, client?: string): void {
    this.inFlight -= 1;
    if (client !== undefined) {
      const held = (this.#clients.get(client) ?? 1) - 1;
      if (held <= 0) this.#clients.delete(client);
      else this.#clients.set(client, held);
    }
    this.#completedThisTick += 1;
    if (latencyMs !== undefined) {
      this.adaptive.sample(latencyMs);
      this.counts.completed[rank] = (this.counts.completed[rank] ?? 0) + 1;
    }
    if (this.#queued > 0) this.#drain();
  }

  /**
   * Every interval (100 ms): moves the limit, the refusal curve and the queue's mode on the
   * interval's signals; drops waiters past their time. Returns what the limit did.
   */
  tick(loop: LoopSignals): LimitMove {
    const now = this.now();
    const seconds = Math.max((now - this.#lastTick) / 1000, 0.001);
    this.#lastTick = now;
    this.#drainRate = 0.7 * this.#drainRate + 0.3 * (this.#completedThisTick / seconds);
    this.#completedThisTick = 0;
    this.#sweep(now);
    // A hot loop counts only while requests run: a loop busy with start-up or background work
    // with no request in flight is nothing shedding requests would relieve.
    const serving = this.inFlight > 0 || this.#admittedThisTick > 0;
    this.#admittedThisTick = 0;
    const hot = serving && loop.utilisation >= this.#hotUtilisation && loop.delayP99Ms >= this.#hotDelayMs;
    const warm = loop.utilisation >= this.#hotUtilisation - 0.1 && loop.delayP99Ms >= this.#hotDelayMs / 2;
    const queueBad = this.#queued > 0 && this.#bad(now);
    const overloaded = hot || queueBad || this.#dropsThisTick > 0;
    const clear = !overloaded && !warm && this.#queued === 0;
    this.#dropsThisTick = 0;
    const room = this.#closedLoopRoom(hot);
    this.#refusedThisTick = 0;
    this.#held = Math.max(this.#heldThisTick, this.#held * HELD_DECAY);
    this.#heldThisTick = this.inFlight + this.#queued;
    this.#overloaded = overloaded;
    if (overloaded) this.#raiseCurve();
    else if (clear) this.#lowerCurve();
    const move = this.adaptive.update(now, {
      gcPause: loop.gcPause,
      hot,
      shedding: this.refusal[SHEDDABLE] !== 0,
      room,
    });
    if (move === 'up' && this.#queued > 0) this.#drain();
    return move;
  }

  /** Seconds a refused client should wait before trying again: the time to drain what is ahead. */
  retryAfterSeconds(): number {
    const ahead = this.#queued + this.inFlight;
    const drain = ahead / Math.max(this.#drainRate, 1);
    // The curve relaxes by one step per tick: the time until a refused class is admitted again.
    const relax = (Math.max(...this.refusal) / this.#fall) * 0.1;
    return Math.min(30, Math.max(1, Math.ceil(Math.max(drain, relax))));
  }

  /** The state now (for logs, health and metrics). */
  state(): ShedderState {
    return {
      limit: this.adaptive.limit,
      inFlight: this.inFlight,
      queued: this.#queued,
      refusal: [...this.refusal],
      overloaded: this.#overloaded,
      minRttMs: this.adaptive.minRttMs,
      rttMs: this.adaptive.rttMs,
      reversals: this.adaptive.reversals,
    };
  }

  #cap(rank: number): number {
    const limit = this.adaptive.limit;
    return rank === 0 ? limit : Math.max(1, limit * (1 - this.#reserve));
  }

  /**
   * While nothing was refused this tick (a client leaving aside) and the loop is not hot, the
   * limit under which the most held this tick would wait longer than half the target (a margin
   * for the rate's swings), over a default request's share of the limit. A closed loop of clients
   * keeps the same number in the process whatever the limit: a lower limit only moves their wait
   * from in flight to the queue, until CoDel calls the queue bad and refuses clients that come
   * straight back. The limit does not shrink under it; it is never raised to it (open overload,
   * which holds the more the more is admitted, would follow it up).
   */
  #closedLoopRoom(hot: boolean): number {
    if (hot || this.#refusedThisTick > 0) return 0;
    return (this.#heldThisTick - (this.#drainRate * this.#target) / 2000) / (1 - this.#reserve);
  }

  /** Whether the queue has been bad (nobody served within the target, never empty) for an interval. */
  #bad(now: number): boolean {
    return now - this.#goodAt > this.#interval;
  }

  /**
   * Room to wait: `queueFactor` × the limit (at least 16), or as many as drain within the target
   * at the rate requests complete, if more: refusing a request that would be served in time only
   * brings a client that waits for its answer (a closed loop, a pool) straight back.
   */
  #maxQueue(): number {
    const room = Math.max(16, Math.ceil(this.adaptive.limit * this.#queueFactor));
    return Math.max(room, Math.floor((this.#drainRate * this.#target) / 1000));
  }

  /**
   * Past its room, the queue still takes a request while it is good, the curve refuses no default
   * request (sheddable ones alone may be a blip's) and the process holds fewer requests than it
   * has held before (the most at once, remembered with a slow decay). A closed loop of clients (a
   * load tester, a pool) keeps the same number in the process whatever the limit: once the limit
   * falls, those over it wait instead, and refusing one only brings its client straight back, the
   * refusal counted as overload (a saturated closed loop tipped into shedding half its requests).
   * Open overload holds ever more and is refused at the room, as before: a longer queue there only
   * makes its clients open connections, which a busy process accepts one per turn of its event
   * loop (docs/protection.md#limits-of-the-design).
   */
  #heldBefore(): boolean {
    return this.inFlight + this.#queued < this.#held && this.refusal[DEFAULT] === 0 && !this.#bad(this.now());
  }

  /** A request came in (admitted or queued): the most held at once this tick. */
  #noteHeld(): void {
    const held = this.inFlight + this.#queued;
    if (held > this.#heldThisTick) this.#heldThisTick = held;
  }

  #waitingAtOrAbove(rank: number): boolean {
    for (let r = 0; r <= rank; r++) if ((this.#queues[r]?.length ?? 0) > 0) return true;
    return false;
  }

  /** While overloaded, whether `client` already holds its share of the limit. */
  #overClientShare(client: string): boolean {
    if (this.#clientShare === undefined) return false;
    const overloaded = this.#overloaded || this.#queued > 0 || (this.refusal[SHEDDABLE] ?? 0) > 0;
    return (
      overloaded && (this.#clients.get(client) ?? 0) >= Math.max(2, this.adaptive.limit * this.#clientShare)
    );
  }

  #start(rank: number, client?: string): void {
    this.inFlight += 1;
    this.#admittedThisTick += 1;
    if (client !== undefined && this.#clientShare !== undefined)
      this.#clients.set(client, (this.#clients.get(client) ?? 0) + 1);
    this.counts.admitted[rank] = (this.counts.admitted[rank] ?? 0) + 1;
    this.adaptive.inFlight(this.inFlight);
  }

  #refuse(rank: number, reason: ShedReason): ShedReason {
    const counts = this.counts.shed[rank];
    if (counts !== undefined) counts[reason] += 1;
    // Dropped for want of room or time: the queue is overloaded (a client leaving is not a sign of it).
    if (reason === 'queue-full' || reason === 'queue-timeout') this.#dropsThisTick += 1;
    if (reason !== 'client-gone') this.#refusedThisTick += 1;
    return reason;
  }

  #drop(waiter: Waiter, reason: ShedReason): void {
    this.#refuse(waiter.rank, reason);
    waiter.resume(reason);
  }

  /** Hands free slots to waiters: the most important class first, then first-come (last-come when overloaded). */
  #drain(): void {
    const now = this.now();
    this.#sweep(now);
    const lifo = this.#bad(now);
    for (let rank = 0; rank < PRIORITIES.length && this.#queued > 0; rank++) {
      const queue = this.#queues[rank];
      if (queue === undefined) continue;
      while (queue.length > 0 && this.inFlight < this.#cap(rank)) {
        const waiter = (lifo ? queue.pop() : queue.shift()) as Waiter;
        this.#queued -= 1;
        if (waiter.gone()) this.#drop(waiter, 'client-gone');
        else if (now >= waiter.deadlineAt) this.#drop(waiter, 'deadline');
        else {
          // Served first come within the target: good. (Last come first served, once bad, always
          // serves a fresh one: only an empty queue makes a bad one good again.)
          if (!lifo && now - waiter.queuedAt < this.#target) this.#goodAt = now;
          this.#start(rank, waiter.client);
          waiter.resume();
        }
      }
    }
    if (this.#queued === 0) this.#goodAt = now;
  }

  /** Drops waiters that waited past CoDel's timeout, whose client left or whose deadline passed. */
  #sweep(now: number): void {
    if (this.#queued === 0) {
      this.#goodAt = now;
      return;
    }
    const timeout = this.#bad(now) ? this.#target : this.#interval;
    for (const queue of this.#queues) {
      // Oldest first: the front of each queue.
      while (queue.length > 0) {
        const oldest = queue[0] as Waiter;
        const reason: ShedReason | undefined = oldest.gone()
          ? 'client-gone'
          : now >= oldest.deadlineAt
            ? 'deadline'
            : now - oldest.queuedAt > timeout
              ? 'queue-timeout'
              : undefined;
        if (reason === undefined) break;
        queue.shift();
        this.#queued -= 1;
        this.#drop(oldest, reason);
      }
    }
    if (this.#queued === 0) this.#goodAt = now;
  }

  #raiseCurve(): void {
    for (let rank = PRIORITIES.length - 1; rank > 0; rank--) {
      const current = this.refusal[rank] ?? 0;
      if (current < 1) {
        this.refusal[rank] = snap(Math.min(1, current + this.#raise));
        return;
      }
    }
  }

  #lowerCurve(): void {
    for (let rank = 1; rank < PRIORITIES.length; rank++) {
      const current = this.refusal[rank] ?? 0;
      if (current > 0) {
        this.refusal[rank] = snap(Math.max(0, current - this.#fall));
        return;
      }
    }
  }
}

const DEFAULT = PRIORITIES.indexOf('default'); // the default class's rank
const SHEDDABLE = PRIORITIES.indexOf('sheddable'); // the sheddable class's rank

/** Per tick, how much of the most requests held at once is remembered: ~37% after 10 s. */
const HELD_DECAY = 0.99;

/** Rounds a probability to 1e-6, so that steps of 0.02 reach 0 and 1 exactly. */
const snap = (p: number) => Math.round(p * 1e6) / 1e6;

import { bulwarkError } from '../errors/index.js';
import type {
  Backlog,
  BacklogSource,
  DependencyMode,
  FailoverOptions,
  FailoverTimers,
  ModeChange,
  ModeReason,
} from './types.js';

const realTimers: FailoverTimers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

const TIMED_OUT = Symbol('timed out');
/** The signal of an operation that does not take one (see `execute`). */
const NEVER_ABORTED = new AbortController().signal;

/**
 * The one failover engine behind every degradable dependency (STYLE.md §2): drivers stay plain and
 * throw; this class owns the deadline, the breaker, the fallback, the probe and the anti-flap rule.
 *
 * - On the primary, every operation has a deadline. A failed or late operation is answered by the
 *   fallback at once (the caller never sees the primary's error). `failureThreshold` failures in a
 *   row, with no success for at least `failureStreakMs`, switch to the fallback: a dead or
 *   blackholed server succeeds at nothing and trips within tens of milliseconds, while a saturated
 *   machine whose replies are sometimes late but keep arriving does not (a late reply that does
 *   arrive counts as a sign of life for the streak, though its operation was already answered by
 *   the fallback).
 * - On the fallback, operations go straight to the fallback while a probe runs every
 *   `probeIntervalMs`. Failback needs `recoverSuccesses` of the last `recoverWindow` probes, the last
 *   one successful, and a healthy streak at least as long as the required streak: zero normally,
 *   ×4 per recent flap. So a flapping server is left alone instead of being switched to and fro.
 * - The kill switch (`setForced(true)`) forces the fallback until released.
 *
 * Nothing runs until {@link start}. Listeners registered with {@link onChange} hear every switch once.
 */
export class Failover {
  readonly name: string;
  readonly #opts: Required<Omit<FailoverOptions, 'timers' | 'isFailure' | 'probe' | 'name'>>;
  readonly #probe: FailoverOptions['probe'];
  readonly #isFailure: (error: unknown) => boolean;
  readonly #timers: FailoverTimers;
  readonly #listeners: ((change: ModeChange) => void)[] = [];
  readonly #backlogs = new Set<BacklogSource>();

  #mode: DependencyMode = 'fallback';
  #reason: ModeReason = 'starting';
  #forced = false;
  #started = false;
  #closed = false;
  #consecutiveFailures = 0;
  #lastSuccessAt = 0;
  #probeResults: boolean[] = [];
  #streakStart: number | undefined;
  #probeTimer: unknown;
  #probing = false;
  #flaps = 0;
  #lastFailbackAt: number | undefined;
  #switches = 0;
  #lastSwitchAt: number | undefined;

  constructor(options: FailoverOptions) {
    this.name = options.name;
    this.#probe = options.probe;
    this.#isFailure = options.isFailure ?? (() => true);
    this.#timers = options.timers ?? realTimers;
    this.#opts = {
      deadlineMs: options.deadlineMs ?? 25,
      failureThreshold: options.failureThreshold ?? 3,
      failureStreakMs: options.failureStreakMs ?? 50,
      probeIntervalMs: options.probeIntervalMs ?? 250,
      probeTimeoutMs: options.probeTimeoutMs ?? 200,
      recoverSuccesses: options.recoverSuccesses ?? 3,
      recoverWindow: options.recoverWindow ?? 4,
      flapWindowMs: options.flapWindowMs ?? 30_000,
      maxStreakMs: options.maxStreakMs ?? 120_000,
    };
    if (this.#opts.recoverSuccesses > this.#opts.recoverWindow) {
      throw bulwarkError('BWK_ERR_FAILOVER_OPTIONS', {
        name: this.name,
        detail: 'recoverSuccesses must not exceed recoverWindow',
      });
    }
  }

  /** The side operations are served from now. */
  get mode(): DependencyMode {
    return this.#mode;
  }

  /** Why the dependency is on its current side. */
  get reason(): ModeReason {
    return this.#reason;
  }

  /** Whether the kill switch forces the fallback. */
  get forced(): boolean {
    return this.#forced;
  }

  /** Switches so far (both directions). */
  get switches(): number {
    return this.#switches;
  }

  /** When the last switch happened (ms since the epoch); undefined before the first. */
  get lastSwitchAt(): number | undefined {
    return this.#lastSwitchAt;
  }

  /** Healthy streak (ms) the primary must show before the next failback. */
  get requiredStreakMs(): number {
    if (this.#flaps === 0) return 0;
    const base = this.#opts.probeIntervalMs * this.#opts.recoverSuccesses;
    return Math.min(this.#opts.maxStreakMs, base * 4 ** this.#flaps);
  }

  /** Calls `listener` on every switch. Listeners must not throw. */
  onChange(listener: (change: ModeChange) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Registers work kept on the fallback side that waits for the primary (see {@link backlog});
   * returns the function that removes it again (for the part's close).
   */
  addBacklog(source: BacklogSource): () => void {
    this.#backlogs.add(source);
    return () => this.#backlogs.delete(source);
  }

  /**
   * Every registered backlog read now, in registration order. Never rejects: a source that cannot
   * be read (the store is down too) is `pending: null` with the error's code or message.
   */
  backlog(): Promise<Backlog[]> {
    return Promise.all(
      [...this.#backlogs].map(async (source) => {
        const { name } = source;
        try {
          return { name, pending: await source.pending() };
        } catch (error) {
          const code = (error as { code?: unknown }).code;
          return { name, pending: null, error: typeof code === 'string' ? code : String(error) };
        }
      }),
    );
  }

  /**
   * Probes the primary once (bounded by `probeTimeoutMs`): primary if it answers, else the fallback
   * with probing until it does. Never rejects: a dependency that is down at boot is not an error.
   */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    if (this.#forced) return;
    if (await this.#probeOnce()) this.#switch('primary', 'healthy');
    else {
      this.#reason = 'unavailable';
      this.#emit('fallback', 'fallback', 'unavailable');
      this.#scheduleProbe();
    }
  }

  /**
   * Runs `primary` under the deadline when on the primary, else `fallback`. A primary failure or
   * timeout is answered by `fallback` (the primary's error is not rethrown) and counted against the
   * primary. The signal passed to `primary` aborts at the deadline. Errors thrown by `fallback`
   * reach the caller. `opts.deadlineMs` replaces the deadline for an operation known to be bigger
   * than one command (a batch).
   */
  async execute<T>(
    primary: (signal: AbortSignal) => Promise<T>,
    fallback: () => T | Promise<T>,
    opts: { deadlineMs?: number } = {},
  ): Promise<T> {
    if (this.#mode !== 'primary') return fallback();
    // Most operations ignore the signal (ioredis cannot cancel a command): no controller for them.
    const controller = primary.length === 0 ? undefined : new AbortController();
    const deadlineMs = opts.deadlineMs ?? this.#opts.deadlineMs;
    const startedAt = this.#timers.now();
    let timer: unknown;
    const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = this.#timers.setTimeout(() => resolve(TIMED_OUT), deadlineMs);
    });
    let settled: { value: T } | undefined;
    const attempt = primary(controller?.signal ?? NEVER_ABORTED).then((value) => {
      settled = { value };
      return value;
    });
    try {
      const result = await Promise.race([attempt, deadline]);
      if (result !== TIMED_OUT) {
        this.#succeeded();
        return result;
      }
      // A starved event loop can fire the deadline timer before reading a reply that has already
      // arrived: give pending I/O one turn before calling the primary late. A timer that fired
      // late was held up by the loop itself, which may also have held the command (the shared
      // Redis client sends a turn's later commands at its end, src/redis/coalesce.ts): the
      // operation gets back the time the loop took from it, up to one more deadline. (A timer a
      // millisecond late is the timers' own granularity, not a held loop.)
      const late = this.#timers.now() - startedAt - deadlineMs;
      if (late >= 2) await this.#grace(attempt, Math.min(late, deadlineMs));
      else await new Promise((resolve) => setImmediate(resolve));
      if (settled !== undefined) {
        this.#succeeded();
        return settled.value;
      }
      // Late, but the server may still be alive and only slow (an overloaded machine): a reply that
      // arrives after all is a sign of life that holds the breaker's streak open. A blackholed or
      // dead server never replies, so it still trips within `failureStreakMs`. (A driver that
      // honours the abort signal gives up instead and shows no such sign.)
      attempt.then(
        () => this.#repliedLate(),
        () => undefined, // its eventual failure is already accounted for
      );
      controller?.abort();
      this.#primaryFailed();
    } catch (error) {
      if (!this.#isFailure(error)) throw error;
      this.#primaryFailed();
    } finally {
      this.#timers.clearTimeout(timer);
    }
    return fallback();
  }

  /** Resolves when `attempt` settles or `ms` have passed, whichever is first. */
  async #grace(attempt: Promise<unknown>, ms: number): Promise<void> {
    let timer: unknown;
    await Promise.race([
      attempt.then(
        () => undefined,
        () => undefined,
      ),
      new Promise<void>((resolve) => {
        timer = this.#timers.setTimeout(resolve, ms);
      }),
    ]);
    this.#timers.clearTimeout(timer);
  }

  /** Kill switch: `true` forces the fallback now; `false` resumes probing (failback when healthy). */
  setForced(forced: boolean): void {
    if (forced === this.#forced) return;
    this.#forced = forced;
    if (forced) {
      this.#timers.clearTimeout(this.#probeTimer);
      if (this.#mode === 'primary') this.#switch('fallback', 'forced');
      else this.#reason = 'forced';
      return;
    }
    this.#reason = 'unavailable';
    this.#probeResults = [];
    this.#streakStart = undefined;
    if (this.#started && !this.#closed) this.#scheduleProbe(0);
  }

  /** Stops probing. Operations keep working on whichever side is current. */
  close(): void {
    this.#closed = true;
    this.#timers.clearTimeout(this.#probeTimer);
  }

  #succeeded(): void {
    this.#consecutiveFailures = 0;
    this.#lastSuccessAt = this.#timers.now();
  }

  #repliedLate(): void {
    this.#lastSuccessAt = this.#timers.now();
  }

  #primaryFailed(): void {
    this.#consecutiveFailures += 1;
    if (
      this.#mode === 'primary' &&
      this.#consecutiveFailures >= this.#opts.failureThreshold &&
      this.#timers.now() - this.#lastSuccessAt >= this.#opts.failureStreakMs
    ) {
      this.#switch('fallback', 'failures');
    }
  }

  #switch(to: DependencyMode, reason: ModeReason): void {
    const from = this.#mode;
    const now = this.#timers.now();
    if (to === 'fallback' && from === 'primary') {
      // Failures soon after a failback are a flap; a long quiet spell on the primary forgives them.
      // The kill switch is an operator's decision, not a flap.
      if (reason === 'failures') {
        const since = this.#lastFailbackAt === undefined ? Infinity : now - this.#lastFailbackAt;
        if (since < this.#opts.flapWindowMs) this.#flaps = Math.min(this.#flaps + 1, 8);
        else this.#flaps = 0;
      }
      this.#probeResults = [];
      this.#streakStart = undefined;
    }
    if (to === 'primary') {
      // Attaching at start is not a failback: only recoveries can be followed by a flap.
      this.#lastFailbackAt = from === 'fallback' && this.#reason !== 'starting' ? now : undefined;
      this.#consecutiveFailures = 0;
      this.#lastSuccessAt = now; // the probe just succeeded
    }
    this.#mode = to;
    this.#reason = reason;
    if (from !== to) {
      this.#switches += 1;
      this.#lastSwitchAt = now;
      this.#emit(from, to, reason);
    }
    if (to === 'fallback' && !this.#forced) this.#scheduleProbe();
  }

  #emit(from: DependencyMode, to: DependencyMode, reason: ModeReason): void {
    const change: ModeChange = {
      dependency: this.name,
      from,
      to,
      reason,
      at: this.#timers.now(),
      requiredStreakMs: this.requiredStreakMs,
    };
    for (const listener of this.#listeners) listener(change);
  }

  #scheduleProbe(delay = this.#opts.probeIntervalMs): void {
    if (this.#closed || this.#forced) return;
    this.#timers.clearTimeout(this.#probeTimer);
    this.#probeTimer = this.#timers.setTimeout(() => void this.#probeTick(), delay);
  }

  async #probeTick(): Promise<void> {
    if (!this.#probingWanted() || this.#probing) return;
    const ok = await this.#probeOnce();
    // The kill switch or close() may have acted while the probe was out.
    if (!this.#probingWanted()) return;
    const now = this.#timers.now();
    this.#probeResults.push(ok);
    if (this.#probeResults.length > this.#opts.recoverWindow) this.#probeResults.shift();
    if (!ok) this.#streakStart = undefined;
    else this.#streakStart ??= now;
    const successes = this.#probeResults.filter(Boolean).length;
    const streak = this.#streakStart === undefined ? 0 : now - this.#streakStart;
    if (ok && successes >= this.#opts.recoverSuccesses && streak >= this.requiredStreakMs) {
      this.#switch('primary', 'healthy');
      return;
    }
    this.#scheduleProbe();
  }

  #probingWanted(): boolean {
    return !this.#closed && !this.#forced && this.#mode === 'fallback';
  }

  /** One probe bounded by its timeout; resolves true when the primary answered. */
  async #probeOnce(): Promise<boolean> {
    this.#probing = true;
    const controller = new AbortController();
    let timer: unknown;
    const timeout = new Promise<boolean>((resolve) => {
      timer = this.#timers.setTimeout(() => {
        controller.abort();
        resolve(false);
      }, this.#opts.probeTimeoutMs);
    });
    try {
      return await Promise.race([
        this.#probe(controller.signal).then(
          () => true,
          () => false,
        ),
        timeout,
      ]);
    } finally {
      this.#timers.clearTimeout(timer);
      this.#probing = false;
    }
  }
}

/** The graded response, mildest first. */
export const RECOVERY_STEPS = ['soft', 'medium', 'hard'] as const;
export type RecoveryStep = (typeof RECOVERY_STEPS)[number];

/** Options of {@link PressureLadder}. */
export interface PressureOptions {
  /** The limit (bytes of RSS, or CPU percent); reaching it means `hard` at once. */
  limit: number;
  /** Fraction of the limit that logs a warning (once until the value drops below it again). */
  warnAt: number;
  /** Fraction of the limit that starts the ladder with `soft`. */
  actAt: number;
  /** Time a step gets before it is judged. */
  dwellMs: number;
  /**
   * Reaching the limit asks for `hard` at once (memory: a fast leak must not outrun the dwell
   * times into the OOM killer). Off for CPU, where a busy process is not about to die: every
   * step gets its dwell time.
   */
  hardAtLimit: boolean;
}

/** What the ladder asks for after a measurement. */
export type PressureEvent =
  | { kind: 'warn'; value: number; threshold: number }
  /** Apply `step` now; `value` is the measurement before it. */
  | { kind: 'step'; step: RecoveryStep; value: number; threshold: number }
  /** The outcome of the last step, judged `dwellMs` after it. */
  | { kind: 'judged'; step: RecoveryStep; before: number; after: number; helped: boolean }
  /** Back below the warning level. */
  | { kind: 'clear'; value: number };

/**
 * The graded response to one resource of one instance, as a pure state machine over measurements.
 * Above `actAt × limit` it asks for `soft`; a step that has not brought the value back below that
 * threshold after `dwellMs` escalates to the next (`medium`, then `hard`); a step that did is judged
 * as having helped and the ladder starts again from the bottom. With `hardAtLimit`, reaching the
 * limit asks for `hard` at once.
 */
export class PressureLadder {
  readonly #opts: PressureOptions;
  #step: RecoveryStep | undefined;
  #stepAt = 0;
  #stepValue = 0;
  #warned = false;

  constructor(opts: PressureOptions) {
    this.#opts = opts;
  }

  /** The step in force, if any. */
  get step(): RecoveryStep | undefined {
    return this.#step;
  }

  /** Feeds one measurement taken at `now`; returns what to do, in order. */
  observe(now: number, value: number): PressureEvent[] {
    const events: PressureEvent[] = [];
    const act = this.#opts.actAt * this.#opts.limit;
    const warn = this.#opts.warnAt * this.#opts.limit;
    if (this.#step === 'hard') return events;
    if (this.#opts.hardAtLimit && value >= this.#opts.limit) {
      if (this.#step !== undefined)
        events.push({
          kind: 'judged',
          step: this.#step,
          before: this.#stepValue,
          after: value,
          helped: false,
        });
      this.#enter('hard', now, value);
      events.push({ kind: 'step', step: 'hard', value, threshold: this.#opts.limit });
      return events;
    }
    if (this.#step !== undefined) {
      if (now - this.#stepAt < this.#opts.dwellMs) return events;
      const helped = value < act;
      events.push({ kind: 'judged', step: this.#step, before: this.#stepValue, after: value, helped });
      if (helped) {
        this.#step = undefined;
      } else {
        const next = RECOVERY_STEPS[RECOVERY_STEPS.indexOf(this.#step) + 1] ?? 'hard';
        this.#enter(next, now, value);
        events.push({ kind: 'step', step: next, value, threshold: act });
        return events;
      }
    }
    if (value >= act) {
      this.#enter('soft', now, value);
      events.push({ kind: 'step', step: 'soft', value, threshold: act });
    } else if (value >= warn) {
      if (!this.#warned) events.push({ kind: 'warn', value, threshold: warn });
      this.#warned = true;
    } else if (this.#warned) {
      this.#warned = false;
      events.push({ kind: 'clear', value });
    }
    return events;
  }

  /** Starts over (a new instance). */
  reset(): void {
    this.#step = undefined;
    this.#warned = false;
  }

  #enter(step: RecoveryStep, now: number, value: number): void {
    this.#step = step;
    this.#stepAt = now;
    this.#stepValue = value;
    this.#warned = true;
  }
}

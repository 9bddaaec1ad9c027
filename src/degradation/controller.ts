// The degradation controller: declared levels of turned-off features, entered one at a time while
// pressure persists (load shed, the supervisor's medium recovery, the app's own signals) and left
// one at a time once it has been gone for longer (hysteresis). Every step is a flag change, so the
// console and the audit log show it with its reason, and is recorded with the measurement before
// it and some seconds after.
import type { Logger } from 'pino';
import { bulwarkError } from '../errors/index.js';

/** One level: the flags it turns off (on top of the levels below it). */
export interface DegradationLevel {
  /** `[a-z0-9-]`, unique: shown in logs, the audit log and the admin API. */
  name: string;
  /** What the level gives up, for operators (e.g. "no recommendations"). */
  description?: string;
  /**
   * Flags turned off on entering, back on on leaving (only those this controller turned off: a flag
   * an operator had already killed stays killed). Each is declared as a tool flag, on by default.
   */
  flags: string[];
  /**
   * Also hold this process's background jobs while at this level or above (running jobs finish;
   * other instances run the rest), as the supervisor's medium recovery does.
   */
  holdJobs?: boolean;
}

/** Options of the degradation controller (`createBulwark({ degradation })`). */
export interface DegradationOptions {
  /** The levels, mildest first (at most 10). */
  levels: DegradationLevel[];
  /** Pressure that lasts this long enters the next level (ms, default 10 000). */
  enterAfterMs?: number;
  /** No pressure for this long leaves the current level (ms, default 60 000). */
  leaveAfterMs?: number;
  /** How often pressure is read (ms, default 1 000). */
  checkMs?: number;
  /** When the "after" measurement of a step is taken (ms, default 10 000). */
  measureAfterMs?: number;
  /** The app's own pressure: a reason while it presses, else undefined. Read every check. */
  pressure?: () => string | undefined;
}

/** What the controller measures around each step. */
export interface Measurement {
  at: number;
  /** Requests shed a second since the previous measurement. */
  shedPerSecond: number;
  /** The load shedder's concurrency limit. */
  limit: number;
  rssBytes: number;
  heapUsedBytes: number;
}

/** One step, kept in memory (the last 50) and in the audit log (its flag changes). */
export interface DegradationStep {
  at: number;
  direction: 'enter' | 'leave';
  /** The level after the step (0: everything on). */
  level: number;
  name: string;
  reason: string;
  flags: string[];
  before: Measurement;
  after?: Measurement;
}

/** What the controller acts with: the flags, this process's background jobs, the audit log. */
export interface FlagSwitch {
  isEnabled(key: string): boolean;
  kill(key: string, reason: string): Promise<unknown>;
  revive(key: string, reason: string): Promise<unknown>;
  /** Holds (or releases) this process's background jobs. */
  holdJobs?(held: boolean): void;
  /** Writes the step to the audit log. */
  audit?(step: DegradationStep): Promise<unknown>;
}

const NAME = /^[a-z0-9][a-z0-9-]{0,49}$/;
const KEEP_STEPS = 50;

/** Checks `options` (at start): throws `BWK_ERR_DEGRADATION_OPTIONS` naming the bad field. */
export function validateDegradation(options: DegradationOptions): void {
  const bad = (field: string, problem: string) => {
    throw bulwarkError('BWK_ERR_DEGRADATION_OPTIONS', { field, problem });
  };
  if (!Array.isArray(options.levels) || options.levels.length === 0 || options.levels.length > 10)
    bad('degradation.levels', 'must list 1 to 10 levels');
  const names = new Set<string>();
  options.levels.forEach((level, i) => {
    if (typeof level.name !== 'string' || !NAME.test(level.name))
      bad(`degradation.levels[${i}].name`, 'must be 1–50 of a-z, 0-9 and -');
    if (names.has(level.name)) bad(`degradation.levels[${i}].name`, `"${level.name}" is used twice`);
    names.add(level.name);
    if (!Array.isArray(level.flags) || level.flags.some((f) => typeof f !== 'string' || f.length === 0))
      bad(`degradation.levels[${i}].flags`, 'must be a list of flag keys');
  });
  for (const field of ['enterAfterMs', 'leaveAfterMs', 'checkMs', 'measureAfterMs'] as const) {
    const value = options[field];
    if (value !== undefined && (!Number.isInteger(value) || value < 0))
      bad(`degradation.${field}`, 'must be a whole number of ms, 0 or more');
  }
}

/** The controller; `check()` is one evaluation (a timer runs it every `checkMs` once started). */
export class DegradationController {
  level = 0;
  readonly levels: readonly DegradationLevel[];
  readonly steps: DegradationStep[] = [];
  /** The reasons pressing at the last check. */
  pressing: string[] = [];
  readonly #o: Required<Omit<DegradationOptions, 'pressure' | 'levels'>>;
  readonly #sources: (() => string | undefined)[];
  readonly #flags: FlagSwitch;
  readonly #measure: () => Measurement;
  readonly #now: () => number;
  readonly #logger: Logger;
  /** Flags each entered level turned off (those already off are not its to turn back on). */
  readonly #turnedOff: string[][] = [];
  #pressedSince: number | undefined;
  #clearSince: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #pending = new Set<NodeJS.Timeout>();
  #checking = false;

  constructor(opts: {
    options: DegradationOptions;
    sources: (() => string | undefined)[];
    flags: FlagSwitch;
    measure: () => Measurement;
    logger: Logger;
    now?: () => number;
  }) {
    validateDegradation(opts.options);
    this.levels = opts.options.levels;
    this.#o = {
      enterAfterMs: opts.options.enterAfterMs ?? 10_000,
      leaveAfterMs: opts.options.leaveAfterMs ?? 60_000,
      checkMs: opts.options.checkMs ?? 1000,
      measureAfterMs: opts.options.measureAfterMs ?? 10_000,
    };
    this.#sources = [
      ...opts.sources,
      ...(opts.options.pressure === undefined ? [] : [opts.options.pressure]),
    ];
    this.#flags = opts.flags;
    this.#measure = opts.measure;
    this.#logger = opts.logger;
    this.#now = opts.now ?? Date.now;
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.check(), this.#o.checkMs);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const timer of this.#pending) clearTimeout(timer);
    this.#pending.clear();
  }

  /** Reads the pressure and takes at most one step. Never rejects (a failed flag change is logged). */
  async check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      const now = this.#now();
      this.pressing = this.#sources.map((read) => safely(read)).filter((r): r is string => r !== undefined);
      if (this.pressing.length > 0) {
        this.#clearSince = undefined;
        this.#pressedSince ??= now;
        if (now - this.#pressedSince >= this.#o.enterAfterMs && this.level < this.levels.length) {
          this.#pressedSince = now;
          await this.#enter(`${this.pressing.join('; ')} for ${Math.round(this.#o.enterAfterMs / 1000)} s`);
        }
      } else {
        this.#pressedSince = undefined;
        this.#clearSince ??= now;
        if (now - this.#clearSince >= this.#o.leaveAfterMs && this.level > 0) {
          this.#clearSince = now;
          await this.#leave(`no pressure for ${Math.round(this.#o.leaveAfterMs / 1000)} s`);
        }
      }
    } catch (error) {
      this.#logger.error({ err: error }, 'degradation: a step failed');
    } finally {
      this.#checking = false;
    }
  }

  async #enter(reason: string): Promise<void> {
    const level = this.levels[this.level] as DegradationLevel;
    const before = this.#measure();
    const turned: string[] = [];
    const why = `degradation level ${this.level + 1} (${level.name}): ${reason}`;
    for (const flag of level.flags) {
      if (!this.#flags.isEnabled(flag)) continue;
      await this.#flags.kill(flag, why);
      turned.push(flag);
    }
    this.#turnedOff.push(turned);
    this.level += 1;
    this.#holdJobs();
    await this.#record({
      direction: 'enter',
      level: this.level,
      name: level.name,
      reason,
      flags: turned,
      before,
    });
  }

  async #leave(reason: string): Promise<void> {
    const level = this.levels[this.level - 1] as DegradationLevel;
    const before = this.#measure();
    const turned = this.#turnedOff.pop() ?? [];
    const why = `leaving degradation level ${this.level} (${level.name}): ${reason}`;
    for (const flag of turned) await this.#flags.revive(flag, why);
    this.level -= 1;
    this.#holdJobs();
    await this.#record({
      direction: 'leave',
      level: this.level,
      name: level.name,
      reason,
      flags: turned,
      before,
    });
  }

  /** Whether any level in force holds the background jobs. */
  get holdsJobs(): boolean {
    return this.levels.slice(0, this.level).some((level) => level.holdJobs === true);
  }

  #holdJobs(): void {
    this.#flags.holdJobs?.(this.holdsJobs);
  }

  async #record(step: Omit<DegradationStep, 'at'>): Promise<void> {
    const recorded: DegradationStep = { at: this.#now(), ...step };
    this.steps.unshift(recorded);
    this.steps.length = Math.min(this.steps.length, KEEP_STEPS);
    const log =
      step.direction === 'enter'
        ? this.#logger.warn.bind(this.#logger)
        : this.#logger.info.bind(this.#logger);
    log(
      { level: step.level, name: step.name, reason: step.reason, flags: step.flags, before: step.before },
      step.direction === 'enter' ? 'degradation: entered a level' : 'degradation: left a level',
    );
    const timer = setTimeout(() => {
      this.#pending.delete(timer);
      recorded.after = this.#measure();
      this.#logger.info(
        { level: step.level, name: step.name, before: step.before, after: recorded.after },
        'degradation: the measurement after the step',
      );
    }, this.#o.measureAfterMs);
    timer.unref();
    this.#pending.add(timer);
    await this.#flags.audit?.(recorded);
  }
}

function safely(read: () => string | undefined): string | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

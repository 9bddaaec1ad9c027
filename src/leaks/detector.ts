import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { CheckResult } from '../health/types.js';
import { resourceSteps, type ResourceStep } from '../parts/steps.js';
import type { Checkouts } from '../store/checkouts.js';
import { AFTER_GC_SIGNALS, ProcessSignals, type SignalSample } from './signals.js';
import { fitSlope, slopeInterval } from './stats.js';
import {
  DEFAULT_LEAK_BUDGETS,
  LEAK_SIGNALS,
  type LeakOptions,
  type LeakReport,
  type LeakSignal,
  type SignalReport,
} from './types.js';

/** Until the signals were watched for this share of `windowMs`, nothing is called a leak. */
const FULL_WINDOW = 0.9;
/**
 * Points a window of the memory signals needs before it can report: one per major GC at most, which
 * come every 5 to 10 s in a busy process; the t quantile of so few points (12.7 for 3) keeps a verdict
 * on them to clean, steady growth.
 */
const MIN_GC_POINTS = 3;

/**
 * Judges one signal's window (pure): the least-squares slope of `points` (ms, value) per minute and
 * the lower end of its 95 % confidence interval; suspected when the signals were watched for at
 * least 90 % of `windowMs` (`watchedMs`), the window holds at least `minSamples` points and that
 * lower end is above `budgetPerMin`.
 */
export function judgeWindow(
  signal: LeakSignal,
  points: readonly { at: number; value: number }[],
  opts: { budgetPerMin: number; windowMs: number; minSamples: number; watchedMs: number },
): SignalReport {
  const first = points[0];
  const last = points.at(-1);
  const spanMs = first === undefined || last === undefined ? 0 : last.at - first.at;
  // Minutes since the first point: the slope comes out per minute, and x stays small.
  const fit = fitSlope(
    points.map((p) => (p.at - (first?.at ?? 0)) / 60_000),
    points.map((p) => p.value),
  );
  const lower = fit === undefined ? undefined : slopeInterval(fit).lower;
  return {
    signal,
    value: last?.value ?? 0,
    samples: points.length,
    spanMs,
    slopePerMin: fit?.slope,
    lowerPerMin: lower,
    budgetPerMin: opts.budgetPerMin,
    suspected:
      lower !== undefined &&
      points.length >= opts.minSamples &&
      opts.watchedMs >= FULL_WINDOW * opts.windowMs &&
      lower > opts.budgetPerMin,
  };
}

/** Options of {@link LeakDetector}. */
export interface LeakDetectorOptions extends LeakOptions {
  registry: Registry;
  logger?: Logger | undefined;
  /** The store's pool (PostgreSQL); undefined on SQLite. */
  checkouts?: Checkouts | undefined;
  /** Clock, ms since the epoch (default `Date.now`). */
  now?: () => number;
  /** Reads the signals (default this process's: {@link ProcessSignals}). */
  read?: () => SignalSample;
}

/**
 * Leak detection: samples heap after GC, RSS, active handles, open descriptors and listener counts
 * every `intervalMs`, fits a line to each over the last `windowMs`, and calls a signal leaking when
 * the lower end of its slope's 95 % confidence interval is above the signal's budget. Also reports
 * store connections held longer than `checkoutHeldMs`. Publishes `bulwark_leak_*` gauges (which the
 * metrics history samples as `leak.*` series) and the report behind the `leaks:growth` health check.
 */
export class LeakDetector {
  readonly intervalMs: number;
  readonly windowMs: number;
  readonly #opts: LeakDetectorOptions;
  readonly #budgets: Record<LeakSignal, number>;
  readonly #signals = new ProcessSignals();
  readonly #read: () => SignalSample;
  readonly #now: () => number;
  readonly #windows = new Map<LeakSignal, { at: number; value: number }[]>();
  readonly #gauges: Record<'value' | 'slope' | 'lower' | 'suspected' | 'held', Gauge<string>>;
  readonly #startedAt: number;
  /** When the first sample past the warm-up was taken. */
  #watchedSince: number | undefined;
  /** Signals watched afresh since a resource step (a worker thread started), and since when. */
  readonly #steppedAt = new Map<LeakSignal, number>();
  readonly #onStep = (message: unknown) => this.#step(message as ResourceStep);
  #timer: NodeJS.Timeout | undefined;
  #enabled = true;
  #last: LeakReport;

  constructor(opts: LeakDetectorOptions) {
    this.#opts = opts;
    this.intervalMs = opts.intervalMs ?? 10_000;
    this.windowMs = opts.windowMs ?? 600_000;
    this.#budgets = { ...DEFAULT_LEAK_BUDGETS, ...opts.budgets };
    this.#read = opts.read ?? (() => this.#signals.read());
    this.#now = opts.now ?? Date.now;
    this.#startedAt = this.#now();
    this.#last = { at: undefined, enabled: true, signals: [], heldConnections: undefined };
    const gauge = (name: string, help: string, labelNames: string[] = ['signal']) =>
      new Gauge({ name, help, labelNames, registers: [opts.registry] });
    this.#gauges = {
      value: gauge('bulwark_leak_signal_value', 'Newest sample of each leak signal (bytes or a count).'),
      slope: gauge('bulwark_leak_slope', 'Fitted growth of each leak signal over the window, per second.'),
      lower: gauge(
        'bulwark_leak_slope_lower_bound',
        'Lower end of the 95 % confidence interval of that growth, per second.',
      ),
      suspected: gauge('bulwark_leak_suspected', '1 while a signal grows beyond its budget, else 0.'),
      held: gauge(
        'bulwark_leak_held_connections',
        'Store connections checked out longer than the allowed time.',
        [],
      ),
    };
  }

  /** Starts sampling every `intervalMs` (an unref'd timer) and observing garbage collections. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#signals.start();
    resourceSteps.subscribe(this.#onStep);
    this.#timer = setInterval(() => this.sampleNow(), this.intervalMs).unref();
  }

  /** Off (the `bulwark.leaks` flag): samples are dropped, nothing is suspected; on again starts afresh. */
  get enabled(): boolean {
    return this.#enabled;
  }

  set enabled(on: boolean) {
    if (on === this.#enabled) return;
    this.#enabled = on;
    this.#windows.clear();
    this.#watchedSince = undefined;
    this.#steppedAt.clear();
    this.#gauges.suspected.reset();
    this.#last = { at: this.#last.at, enabled: on, signals: [], heldConnections: undefined };
  }

  /**
   * Counts the listeners of a long-lived `emitter` in the `listeners` signal; returns the function
   * that stops counting them.
   */
  watchEmitter(name: string, emitter: EventEmitter): () => void {
    return this.#signals.watchEmitter(name, emitter);
  }

  /** Takes one sample now and judges every window; returns the report (also kept for {@link report}). */
  sampleNow(): LeakReport {
    if (!this.#enabled) return this.#last;
    const now = this.#now();
    const sample = this.#read();
    const signals: SignalReport[] = [];
    const warm = now - this.#startedAt >= (this.#opts.warmupMs ?? 60_000);
    if (warm) this.#watchedSince ??= now;
    for (const signal of LEAK_SIGNALS) {
      const value = sample[signal];
      const window = this.#windows.get(signal) ?? [];
      if (warm && value !== undefined && Number.isFinite(value)) window.push({ at: now, value });
      // One sample older than the window stays: the fit then spans the whole window.
      while (window.length > 1 && (window[1]?.at ?? now) <= now - this.windowMs) window.shift();
      this.#windows.set(signal, window);
      if (window.length === 0) continue;
      const report = judgeWindow(signal, window, {
        budgetPerMin: this.#budgets[signal],
        windowMs: this.windowMs,
        minSamples: AFTER_GC_SIGNALS.has(signal) ? MIN_GC_POINTS : (this.#opts.minSamples ?? 10),
        watchedMs: now - Math.max(this.#watchedSince ?? now, this.#steppedAt.get(signal) ?? 0),
      });
      this.#publish(report);
      signals.push(report);
    }
    const minHeld = this.#opts.checkoutHeldMs ?? 30_000;
    const held = this.#opts.checkouts?.held(minHeld);
    this.#gauges.held.set(held?.length ?? 0);
    this.#last = {
      at: now,
      enabled: true,
      signals,
      heldConnections: held?.map(({ heldMs, stack, lastQuery }) => ({ heldMs, stack, lastQuery })),
    };
    return this.#last;
  }

  /** The last report. */
  report(): LeakReport {
    return this.#last;
  }

  /** Active resources by type now: what a growing `handles` signal is made of. */
  handleTypes(): Record<string, number> {
    return this.#signals.handleTypes();
  }

  /**
   * The `leaks:growth` health check's result: `warn` naming each suspected signal with its growth,
   * and each store connection held too long with the stack that took it; else `pass`. Never `fail`:
   * a leak is a reason to look, not to take the instance out of the load balancer.
   */
  health(): CheckResult {
    const report = this.#last;
    if (!report.enabled) return { status: 'pass', output: 'leak detection is off (flag bulwark.leaks)' };
    const problems = report.signals.filter((s) => s.suspected).map(describeSignal);
    for (const held of report.heldConnections ?? [])
      problems.push(
        `a store connection is held for ${Math.round(held.heldMs / 1000)} s (last query: ${held.lastQuery ?? 'none'}), taken at ${held.stack
          .split('\n')
          .slice(0, 3)
          .map((frame) => frame.replace(/^at /, ''))
          .join(' < ')}`,
      );
    if (problems.length === 0) return { status: 'pass', observedValue: 0 };
    if (report.signals.some((s) => s.suspected && s.signal === 'handles'))
      problems.push(`active handles by type: ${JSON.stringify(this.handleTypes())}`);
    return { status: 'warn', observedValue: problems.length, output: problems.join('; ') };
  }

  /** Stops sampling and observing. */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#signals.stop();
    resourceSteps.unsubscribe(this.#onStep);
  }

  /**
   * A part stepped the process's resources once (see `announceResourceStep`): the signals it moved
   * start a new window, so the step is not read as growth; they are judged again a full window on.
   */
  #step(step: ResourceStep): void {
    const now = this.#now();
    const moved = LEAK_SIGNALS.filter((signal) => step.signals.includes(signal));
    for (const signal of moved) {
      this.#windows.delete(signal);
      this.#steppedAt.set(signal, now);
    }
    if (moved.length > 0) this.#opts.logger?.info(`leaks: ${moved.join(', ')} watched afresh: ${step.what}`);
  }

  #publish(report: SignalReport): void {
    const labels = { signal: report.signal };
    const wasSuspected = this.#last.signals.find((s) => s.signal === report.signal)?.suspected === true;
    this.#gauges.value.set(labels, report.value);
    if (report.slopePerMin !== undefined) this.#gauges.slope.set(labels, report.slopePerMin / 60);
    if (report.lowerPerMin !== undefined) this.#gauges.lower.set(labels, report.lowerPerMin / 60);
    this.#gauges.suspected.set(labels, report.suspected ? 1 : 0);
    if (report.suspected && !wasSuspected)
      this.#opts.logger?.warn({ leak: report }, `leak suspected: ${describeSignal(report)}`);
    else if (!report.suspected && wasSuspected)
      this.#opts.logger?.info({ leak: report }, `leak no longer suspected: ${report.signal}`);
  }
}

/** `heap_after_gc grows 3.2 MiB/min (95 % lower bound 2.9 MiB/min > budget 1 MiB/min over 600 s)`. */
export function describeSignal(s: SignalReport): string {
  const bytes = s.signal === 'heap_after_gc' || s.signal === 'rss';
  const amount = (n: number | undefined) =>
    n === undefined ? '?' : bytes ? `${(n / 1_048_576).toFixed(2)} MiB` : n.toFixed(2);
  return `${s.signal} grows ${amount(s.slopePerMin)}/min (95 % lower bound ${amount(s.lowerPerMin)}/min > budget ${amount(s.budgetPerMin)}/min over ${Math.round(s.spanMs / 1000)} s, ${s.samples} samples)`;
}

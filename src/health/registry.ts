import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { bulwarkError } from '../errors/index.js';
import type {
  CheckReport,
  CheckResult,
  HealthCheckDefinition,
  HealthReport,
  HealthStatus,
  Lifecycle,
} from './types.js';

/** Timers the registry uses; tests may pass their own to drive time. */
export interface HealthTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: HealthTimers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface Entry {
  def: Required<Omit<HealthCheckDefinition, 'componentType'>> & { componentType: string | undefined };
  last: CheckReport | undefined;
  running: Promise<void> | undefined;
  timer: unknown;
}

/** Service identity shown in every report. */
export interface HealthIdentity {
  serviceId?: string;
  releaseId?: string;
  description?: string;
}

/**
 * Registry of health checks. Each check runs on its own interval in the background and its last
 * result is cached, so serving `/health` never waits on a dependency; a run that exceeds its timeout
 * is recorded as `fail` at the timeout, and a new run is not started while a hung one is pending.
 */
export class HealthRegistry {
  readonly #entries = new Map<string, Entry>();
  readonly #timers: HealthTimers;
  readonly #logger: Logger | undefined;
  readonly #identity: HealthIdentity;
  #lifecycle: Lifecycle = 'starting';
  #started = false;
  readonly #loopDelay: IntervalHistogram;

  constructor(opts: { timers?: HealthTimers; logger?: Logger; identity?: HealthIdentity } = {}) {
    this.#timers = opts.timers ?? realTimers;
    this.#logger = opts.logger;
    this.#identity = opts.identity ?? {};
    this.#loopDelay = monitorEventLoopDelay({ resolution: 20 });
    this.#loopDelay.enable();
    this.register({
      name: 'eventloop:delay',
      componentType: 'system',
      critical: false,
      intervalMs: 5000,
      check: () => this.#checkLoopDelay(),
    });
    this.register({
      name: 'process:memory',
      componentType: 'system',
      critical: false,
      intervalMs: 5000,
      check: () => ({ status: 'pass', observedValue: process.memoryUsage.rss(), observedUnit: 'bytes' }),
    });
  }

  get lifecycle(): Lifecycle {
    return this.#lifecycle;
  }

  /** Adds a check; throws `BWK_ERR_HEALTH_CHECK_DUPLICATE` if the name is taken. Starts it if running. */
  register(def: HealthCheckDefinition): void {
    if (this.#entries.has(def.name)) throw bulwarkError('BWK_ERR_HEALTH_CHECK_DUPLICATE', { name: def.name });
    const entry: Entry = {
      def: {
        name: def.name,
        componentType: def.componentType,
        critical: def.critical ?? true,
        readiness: def.readiness ?? false,
        intervalMs: def.intervalMs ?? 5000,
        timeoutMs: def.timeoutMs ?? 1000,
        check: (signal) => def.check(signal),
      },
      last: undefined,
      running: undefined,
      timer: undefined,
    };
    this.#entries.set(def.name, entry);
    if (this.#started) void this.#runAndSchedule(entry);
  }

  /** Removes a check and its timer. */
  unregister(name: string): void {
    const entry = this.#entries.get(name);
    if (entry === undefined) return;
    this.#timers.clearTimeout(entry.timer);
    this.#entries.delete(name);
  }

  /** Runs every check once (bounded by their timeouts), then keeps each on its interval. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await Promise.all([...this.#entries.values()].map((entry) => this.#runAndSchedule(entry)));
  }

  /** Runs every check now, without waiting for its interval; resolves when all have a result. */
  async runAll(): Promise<void> {
    await Promise.all([...this.#entries.values()].map((entry) => this.#run(entry)));
  }

  /** Runs one check now (e.g. right after the state it reports changed); unknown names are ignored. */
  async runNow(name: string): Promise<void> {
    const entry = this.#entries.get(name);
    if (entry !== undefined) await this.#run(entry);
  }

  /** Readiness may pass from now on (checks permitting). */
  markReady(): void {
    if (this.#lifecycle === 'starting') this.#lifecycle = 'ready';
  }

  /** Readiness fails from now on: the service is draining. */
  markStopping(): void {
    this.#lifecycle = 'stopping';
  }

  /** The full report: every check's cached result. */
  report(): HealthReport {
    return this.#build(() => true);
  }

  /** Readiness: lifecycle plus required checks. `fail` while starting, stopping or a required check fails. */
  readiness(): HealthReport {
    return this.#build((entry) => entry.def.critical || entry.def.readiness);
  }

  /** Liveness: depends on nothing external; answering at all proves the event loop runs. */
  liveness(): HealthReport {
    return {
      status: 'pass',
      ...this.#identityFields(),
      checks: {
        'uptime:uptime': [
          {
            componentType: 'system',
            status: 'pass',
            observedValue: process.uptime(),
            observedUnit: 's',
            time: this.#isoNow(),
          },
        ],
      },
    };
  }

  /** Stops every timer; cached results stay readable. Readiness fails after close. */
  close(): void {
    this.#lifecycle = 'stopping';
    this.#started = false;
    for (const entry of this.#entries.values()) this.#timers.clearTimeout(entry.timer);
    this.#loopDelay.disable();
  }

  #build(include: (entry: Entry) => boolean): HealthReport {
    const checks: Record<string, CheckReport[]> = {};
    let status: HealthStatus = 'pass';
    for (const entry of this.#entries.values()) {
      if (!include(entry)) continue;
      const last = entry.last ?? {
        status: 'warn' as const,
        output: 'not checked yet',
        time: this.#isoNow(),
        ...(entry.def.componentType === undefined ? {} : { componentType: entry.def.componentType }),
      };
      checks[entry.def.name] = [last];
      const effective: HealthStatus = last.status === 'fail' && !entry.def.critical ? 'warn' : last.status;
      status = worst(status, effective);
    }
    checks['service:lifecycle'] = [
      {
        componentType: 'system',
        status: this.#lifecycle === 'ready' ? 'pass' : 'fail',
        observedValue: this.#lifecycle,
        time: this.#isoNow(),
      },
    ];
    if (this.#lifecycle !== 'ready') status = 'fail';
    return { status, ...this.#identityFields(), checks };
  }

  #identityFields(): Omit<HealthReport, 'status' | 'checks'> {
    const { serviceId, releaseId, description } = this.#identity;
    return {
      version: releaseId?.split('.')[0] ?? '1',
      ...(releaseId === undefined ? {} : { releaseId }),
      ...(serviceId === undefined ? {} : { serviceId }),
      ...(description === undefined ? {} : { description }),
    };
  }

  async #runAndSchedule(entry: Entry): Promise<void> {
    await this.#run(entry);
    if (!this.#started || this.#entries.get(entry.def.name) !== entry) return;
    entry.timer = this.#timers.setTimeout(() => void this.#runAndSchedule(entry), entry.def.intervalMs);
  }

  /**
   * One run; resolves once a result (or the timeout) is recorded. While a hung run is still pending
   * no new run starts: its timeout result stands until it settles, so checks never pile up.
   */
  async #run(entry: Entry): Promise<void> {
    if (entry.running !== undefined) return;
    const { def } = entry;
    const started = this.#timers.now();
    const controller = new AbortController();
    let timeoutHandle: unknown;
    const timedOut = new Promise<CheckResult>((resolve) => {
      timeoutHandle = this.#timers.setTimeout(() => {
        controller.abort();
        const error = bulwarkError('BWK_ERR_HEALTH_CHECK_TIMEOUT', {
          name: def.name,
          timeoutMs: def.timeoutMs,
        });
        resolve({ status: 'fail', output: error.message });
      }, def.timeoutMs);
    });
    const attempt = (async (): Promise<CheckResult> => def.check(controller.signal))().catch(
      (error: unknown): CheckResult => ({
        status: 'fail',
        output: error instanceof Error ? error.message : String(error),
      }),
    );
    entry.running = attempt.then(
      () => {
        entry.running = undefined;
      },
      () => {
        entry.running = undefined;
      },
    );
    const result = await Promise.race([attempt, timedOut]);
    this.#timers.clearTimeout(timeoutHandle);
    const previous = entry.last?.status;
    entry.last = {
      ...result,
      ...(def.componentType === undefined ? {} : { componentType: def.componentType }),
      time: this.#isoNow(),
      durationMs: this.#timers.now() - started,
    };
    if (previous !== undefined && previous !== result.status) {
      this.#logger?.warn(
        { check: def.name, from: previous, to: result.status, output: result.output },
        'health check changed status',
      );
    }
  }

  #checkLoopDelay(): CheckResult {
    const p99 = this.#loopDelay.percentile(99) / 1e6;
    this.#loopDelay.reset();
    return {
      status: p99 > 500 ? 'warn' : 'pass',
      observedValue: Math.round(p99 * 100) / 100,
      observedUnit: 'ms',
    };
  }

  #isoNow(): string {
    return new Date(this.#timers.now()).toISOString();
  }
}

const RANK: Record<HealthStatus, number> = { pass: 0, warn: 1, fail: 2 };

function worst(a: HealthStatus, b: HealthStatus): HealthStatus {
  return RANK[b] > RANK[a] ? b : a;
}

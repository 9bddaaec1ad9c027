// Load shedding for one process: the shedder (pure logic) driven every 100 ms by the event loop's
// signals, with its metrics, its health check and one log line when shedding starts and ends.
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { HealthRegistry } from '../health/index.js';
import type { MetricsHistory } from '../metrics/history.js';
import { Shedder } from './shedder.js';
import { LoopSampler } from './signals.js';
import { PRIORITIES, SHED_REASONS, type Priority, type ShedderOptions } from './types.js';

export { Shedder } from './shedder.js';
export { PRIORITIES, SHED_REASONS, type Priority, type ShedReason, type Waiter } from './types.js';

/**
 * Options of load shedding (the `protection` option of `createBulwark()` and of the Fastify plugin,
 * which engages it); none needs tuning per service.
 */
export interface ProtectionOptions extends ShedderOptions {
  /** How often the signals are read and the limit moves (ms, default 100). */
  tickMs?: number;
  /**
   * A request header naming the request's class (`critical`, `default`, `sheddable`), for a
   * header your edge sets and strips from clients (a client could otherwise promote itself).
   * Unset: none.
   */
  priorityHeader?: string;
  /** Decides the class of a request; `undefined` falls back to the header, then to the route's. */
  classify?: (request: FastifyRequest) => Priority | undefined;
  /**
   * A request header with the client's remaining patience in ms (an integer): a request still
   * waiting for a slot when it runs out is dropped before it runs (default `x-request-timeout-ms`;
   * `false`: none).
   */
  deadlineHeader?: string | false;
  /** The client of a request, for `clientShare` (default `request.ip`). */
  clientKey?: (request: FastifyRequest) => string | undefined;
}

/** Ticks without shedding after which an episode is over (and logged as such): 2 s. */
const QUIET_TICKS = 20;

/**
 * `bulwark.protection`: admission control of the HTTP plugin's requests (docs/protection.md).
 * Sampling starts when the plugin engages it, so a process without the plugin pays nothing.
 */
export class Protection {
  readonly shedder: Shedder;
  readonly #tickMs: number;
  readonly #logger: Logger;
  #sampler: LoopSampler | undefined;
  #timer: NodeJS.Timeout | undefined;
  #episode: { startedAt: number; shedAtStart: number } | undefined;
  #quietTicks = 0;
  #shedSeen = 0;

  constructor(options: ProtectionOptions & { logger: Logger; registry: Registry; health: HealthRegistry }) {
    this.shedder = new Shedder(options);
    this.#tickMs = options.tickMs ?? 100;
    this.#logger = options.logger;
    registerMetrics(options.registry, this.shedder);
    options.health.register({
      name: 'protection:shedding',
      componentType: 'component',
      critical: false,
      // Episodes last seconds: a check every 5 s (the default) would miss most of them.
      intervalMs: 1000,
      check: () => this.#health(),
    });
  }

  /** Whether requests are admission-controlled (the tool flag `bulwark.protection`). */
  get enabled(): boolean {
    return this.shedder.enabled;
  }

  set enabled(on: boolean) {
    this.shedder.enabled = on;
  }

  /** Whether requests have been shed in the last 2 s. */
  get shedding(): boolean {
    return this.#episode !== undefined;
  }

  /**
   * Samples `protection.limit` and `protection.shed_per_s` into the metrics history (what alert
   * rules and the degradation of features read), from the next tick on.
   */
  recordInto(history: MetricsHistory): void {
    let last = { at: Date.now(), shed: this.shedder.shedTotal };
    history.register('protection.limit', () =>
      this.#timer === undefined ? undefined : this.shedder.adaptive.limit,
    );
    history.register('protection.shed_per_s', () => {
      if (this.#timer === undefined) return undefined;
      const now = { at: Date.now(), shed: this.shedder.shedTotal };
      const rate = ((now.shed - last.shed) * 1000) / Math.max(1, now.at - last.at);
      last = now;
      return rate;
    });
  }

  /** Starts reading the event loop's signals (idempotent); the HTTP plugin calls it. */
  engage(): void {
    if (this.#timer !== undefined) return;
    this.#sampler = new LoopSampler();
    this.#timer = setInterval(() => this.#tick(), this.#tickMs);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#sampler?.close();
    this.#sampler = undefined;
  }

  #tick(): void {
    const sampler = this.#sampler;
    if (sampler === undefined) return;
    const signals = sampler.read();
    this.shedder.tick(signals);
    const shed = this.shedder.shedTotal;
    const shedding = shed > this.#shedSeen || this.shedder.refusal.some((p) => p > 0);
    this.#shedSeen = shed;
    if (shedding) {
      this.#quietTicks = 0;
      if (this.#episode === undefined) {
        this.#episode = { startedAt: Date.now(), shedAtStart: shed };
        this.#logger.warn(
          {
            protection: this.#summary(),
            loopDelayP99Ms: round(signals.delayP99Ms),
            utilisation: round(signals.utilisation),
          },
          'overloaded: shedding requests, least important first',
        );
      }
    } else if (this.#episode !== undefined && ++this.#quietTicks >= QUIET_TICKS) {
      const { startedAt, shedAtStart } = this.#episode;
      this.#episode = undefined;
      this.#logger.info(
        { shed: shed - shedAtStart, durationMs: Date.now() - startedAt, protection: this.#summary() },
        'load back under the limit: shedding stopped',
      );
    }
  }

  #summary(): Record<string, number> {
    const state = this.shedder.state();
    return {
      limit: Math.round(state.limit),
      inFlight: state.inFlight,
      queued: state.queued,
      refusedDefault: round(state.refusal[1] ?? 0),
      refusedSheddable: round(state.refusal[2] ?? 0),
    };
  }

  #health() {
    const state = this.shedder.state();
    if (!this.shedder.enabled)
      return {
        status: 'pass' as const,
        observedValue: 'off',
        output: 'Load shedding is off (flag bulwark.protection)',
      };
    if (this.#episode === undefined)
      return { status: 'pass' as const, observedValue: Math.round(state.limit) };
    const refused = PRIORITIES.map(
      (name, rank) => `${name} ${Math.round((state.refusal[rank] ?? 0) * 100)}%`,
    );
    return {
      status: 'warn' as const,
      observedValue: Math.round(state.limit),
      output: `Overloaded, shedding requests (refused: ${refused.slice(1).join(', ')}); concurrency limit ${Math.round(state.limit)}, ${state.inFlight} in flight, ${state.queued} waiting`,
    };
  }
}

const round = (value: number) => Math.round(value * 100) / 100;

/** The shedder's figures as Prometheus metrics, read at scrape time (nothing per request). */
function registerMetrics(registry: Registry, shedder: Shedder): void {
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge('bulwark_protection_limit', 'The adaptive concurrency limit.', () => shedder.adaptive.limit);
  gauge('bulwark_protection_in_flight', 'Admitted requests not yet answered.', () => shedder.inFlight);
  gauge('bulwark_protection_queued', 'Requests waiting for a slot.', () => shedder.queued);
  gauge('bulwark_protection_latency_seconds', 'Smoothed latency of admitted requests.', () =>
    Number.isNaN(shedder.adaptive.rttMs) ? 0 : shedder.adaptive.rttMs / 1000,
  );
  gauge(
    'bulwark_protection_min_latency_seconds',
    'The baseline latency the limit is measured against.',
    () => (Number.isFinite(shedder.adaptive.minRttMs) ? shedder.adaptive.minRttMs / 1000 : 0),
  );
  new Gauge({
    name: 'bulwark_protection_refusal_ratio',
    help: 'Share of new requests of each class refused at once by the shedding curve.',
    labelNames: ['class'],
    registers: [registry],
    collect() {
      PRIORITIES.forEach((name, rank) => this.set({ class: name }, shedder.refusal[rank] ?? 0));
    },
  });
  const counter = (name: string, help: string, labelNames: string[], sync: (c: Counter) => void) => {
    const metric: Counter = new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        metric.reset();
        sync(metric);
      },
    });
  };
  counter(
    'bulwark_protection_shed_total',
    'Requests refused or dropped, by class and reason.',
    ['class', 'reason'],
    (c) =>
      PRIORITIES.forEach((name, rank) => {
        const byReason = shedder.counts.shed[rank];
        if (byReason !== undefined)
          for (const reason of SHED_REASONS)
            if (byReason[reason] > 0) c.inc({ class: name, reason }, byReason[reason]);
      }),
  );
  counter('bulwark_protection_admitted_total', 'Requests admitted, by class.', ['class'], (c) =>
    PRIORITIES.forEach((name, rank) => c.inc({ class: name }, shedder.counts.admitted[rank] ?? 0)),
  );
  counter(
    'bulwark_protection_goodput_total',
    'Admitted requests answered below 500, by class.',
    ['class'],
    (c) => PRIORITIES.forEach((name, rank) => c.inc({ class: name }, shedder.counts.completed[rank] ?? 0)),
  );
  counter(
    'bulwark_protection_limit_reversals_total',
    'Changes of direction of the concurrency limit.',
    [],
    (c) => c.inc(shedder.adaptive.reversals),
  );
}

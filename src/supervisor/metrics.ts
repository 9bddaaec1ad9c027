import { Counter, Gauge, Registry } from 'prom-client';
import { collectProcessMetrics } from '../metrics/index.js';

/** What the metrics read at scrape time. */
export interface SupervisorView {
  startedAt: number;
  state: string;
  slots: { index: number; state: string; uptimeMs: number; rss?: number; cpu?: number }[];
}

/**
 * The supervisor's own Prometheus metrics, served on its `--metrics-port`. Counters move with each
 * event (an alerting rule can use `increase(bulwark_supervisor_events_total{type="parked"}[5m])`);
 * gauges are read from the supervisor when scraped.
 */
export class SupervisorMetrics {
  readonly registry = new Registry();
  readonly restarts: Counter<'reason'>;
  readonly events: Counter<'type'>;
  readonly recoverySteps: Counter<'resource' | 'step'>;
  readonly recoveryOutcomes: Counter<'resource' | 'step' | 'outcome'>;
  readonly reloads: Counter<'outcome'>;

  constructor(view: () => SupervisorView) {
    collectProcessMetrics(this.registry);
    const registers = [this.registry];
    this.restarts = new Counter({
      name: 'bulwark_supervisor_restarts_total',
      help: 'App restarts by reason (crash, hung, unresponsive, memory, cpu, start-failed, ...).',
      labelNames: ['reason'],
      registers,
    });
    this.events = new Counter({
      name: 'bulwark_supervisor_events_total',
      help: 'Supervisor events by type (started, ready, exited, parked, unparked, hung, reload-*, ...).',
      labelNames: ['type'],
      registers,
    });
    this.recoverySteps = new Counter({
      name: 'bulwark_supervisor_recovery_steps_total',
      help: 'Graded recovery steps taken, by resource (memory|cpu) and step (soft|medium|hard).',
      labelNames: ['resource', 'step'],
      registers,
    });
    this.recoveryOutcomes = new Counter({
      name: 'bulwark_supervisor_recovery_outcomes_total',
      help: 'Recovery steps judged after their dwell time, by outcome (helped|escalated).',
      labelNames: ['resource', 'step', 'outcome'],
      registers,
    });
    this.reloads = new Counter({
      name: 'bulwark_supervisor_reloads_total',
      help: 'Rolling reloads by outcome (succeeded|rolled_back).',
      labelNames: ['outcome'],
      registers,
    });
    new Gauge({
      name: 'bulwark_supervisor_uptime_seconds',
      help: 'Seconds since the supervisor started.',
      registers,
      collect() {
        this.set((Date.now() - view().startedAt) / 1000);
      },
    });
    new Gauge({
      name: 'bulwark_supervisor_slots',
      help: 'App slots by state (running, starting, backoff, parked, stopped).',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        for (const state of ['running', 'starting', 'backoff', 'parked', 'stopped']) this.set({ state }, 0);
        for (const slot of view().slots) this.inc({ state: slot.state });
      },
    });
    new Gauge({
      name: 'bulwark_supervisor_instance_uptime_seconds',
      help: "Seconds since each slot's app process started (0 while down).",
      labelNames: ['slot'],
      registers,
      collect() {
        this.reset();
        for (const slot of view().slots) this.set({ slot: String(slot.index) }, slot.uptimeMs / 1000);
      },
    });
    new Gauge({
      name: 'bulwark_supervisor_instance_resident_memory_bytes',
      help: "Each slot's app process RSS at the last sample.",
      labelNames: ['slot'],
      registers,
      collect() {
        this.reset();
        for (const slot of view().slots)
          if (slot.rss !== undefined) this.set({ slot: String(slot.index) }, slot.rss);
      },
    });
    new Gauge({
      name: 'bulwark_supervisor_instance_cpu_percent',
      help: "Each slot's app process CPU use at the last sample (100 = one core).",
      labelNames: ['slot'],
      registers,
      collect() {
        this.reset();
        for (const slot of view().slots)
          if (slot.cpu !== undefined) this.set({ slot: String(slot.index) }, slot.cpu);
      },
    });
  }
}

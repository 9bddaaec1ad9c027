import { Counter, Gauge, type Registry } from 'prom-client';
import { TalliedHistogram, type TalliedSeries } from '../metrics/tallied-histogram.js';
import { emptyTimings, RecentDurations, TIMINGS_WINDOW_MS } from './timings.js';
import type { QueueCounts, QueueTimings } from './types.js';

const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** The events counted per queue in `bulwark_queue_jobs_total` (besides `recovered`, counted for all). */
const EVENTS = ['added', 'started', 'completed', 'retried', 'dead'] as const;
type QueueEvent = (typeof EVENTS)[number];

interface QueueSeries {
  queue: string;
  /** Events counted since the counter was last read. */
  events: Record<QueueEvent, number>;
  wait: TalliedSeries;
  run: Record<JobOutcome, TalliedSeries>;
  latency: TalliedSeries;
  /** The latest wait and run times, for {@link QueueMetrics.timings}. */
  recentWait: RecentDurations;
  recentRun: RecentDurations;
}

/** Why a job left the running state. */
export type JobOutcome = 'completed' | 'retried' | 'dead';

/**
 * Queue metrics on a Bulwark registry:
 * - `bulwark_queue_jobs{queue,state}`: jobs per reported state, read from the store at scrape time;
 * - `bulwark_queue_jobs_total{queue,event}`: added, started, completed, retried, dead, recovered;
 * - `bulwark_queue_wait_seconds{queue}`: from due (added, or retry time) to start;
 * - `bulwark_queue_run_seconds{queue,outcome}`: one attempt, start to finish;
 * - `bulwark_queue_latency_seconds{queue}`: from added to completed.
 *
 * Events and durations are tallied in plain numbers per job and handed to prom-client when a metric
 * is read (a scrape, the metrics history): prom-client allocates, validates the labels and hashes
 * them on every `inc()`/`observe()`, even through a bound child, which showed in the BullMQ driver's
 * profile at tens of thousands of jobs a second (docs/benchmarks.md).
 *
 * It also keeps each queue's latest wait and run times for {@link timings} (the admin API's p50/p95).
 * `now` (default `Date.now`) stamps them.
 */
export class QueueMetrics {
  readonly #events: Counter<'queue' | 'event'>;
  readonly #wait: TalliedHistogram;
  readonly #run: TalliedHistogram;
  readonly #latency: TalliedHistogram;
  #counts: ((queue?: string) => Promise<Map<string, QueueCounts>>) | undefined;
  readonly #bound = new Map<string, QueueSeries>();
  readonly #now: () => number;

  constructor(registry: Registry, opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
    const counts = () => this.#counts;
    new Gauge({
      name: 'bulwark_queue_jobs',
      help: 'Jobs per queue and state (waiting, delayed, retrying, active, dead), read at scrape time.',
      labelNames: ['queue', 'state'],
      registers: [registry],
      async collect() {
        const read = counts();
        if (read === undefined) return;
        this.reset();
        try {
          for (const [queue, byState] of await read())
            for (const [state, n] of Object.entries(byState)) this.set({ queue, state }, n);
        } catch {
          // Store unavailable: its own metrics and health check say so; report no numbers.
        }
      },
    });
    const bound = this.#bound;
    this.#events = new Counter({
      name: 'bulwark_queue_jobs_total',
      help: 'Job events per queue: added, started, completed, retried, dead, recovered.',
      labelNames: ['queue', 'event'],
      registers: [registry],
      collect() {
        for (const series of bound.values())
          for (const event of EVENTS) {
            const n = series.events[event];
            if (n === 0) continue;
            this.inc({ queue: series.queue, event }, n);
            series.events[event] = 0;
          }
      },
    });
    this.#wait = new TalliedHistogram({
      name: 'bulwark_queue_wait_seconds',
      help: 'Time from a job being due (added, or its retry time) to an attempt starting.',
      labelNames: ['queue'],
      buckets: BUCKETS,
      registers: [registry],
    });
    this.#run = new TalliedHistogram({
      name: 'bulwark_queue_run_seconds',
      help: 'Duration of one attempt, by outcome.',
      labelNames: ['queue', 'outcome'],
      buckets: BUCKETS,
      registers: [registry],
    });
    this.#latency = new TalliedHistogram({
      name: 'bulwark_queue_latency_seconds',
      help: 'Time from a job being added to its completion.',
      labelNames: ['queue'],
      buckets: BUCKETS,
      registers: [registry],
    });
  }

  /** Where the state gauge reads its numbers from. */
  attach(counts: (queue?: string) => Promise<Map<string, QueueCounts>>): void {
    this.#counts = counts;
  }

  added(queue: string, n = 1): void {
    this.#series(queue).events.added += n;
  }

  /** An attempt started, `waitSeconds` after its job fell due (undefined: not known, not observed). */
  started(queue: string, waitSeconds: number | undefined): void {
    const series = this.#series(queue);
    series.events.started += 1;
    if (waitSeconds === undefined) return;
    const wait = Math.max(0, waitSeconds);
    series.wait.observe(wait);
    series.recentWait.record(this.#now(), wait * 1000);
  }

  finished(queue: string, outcome: JobOutcome, runSeconds: number, latencySeconds: number | undefined): void {
    const series = this.#series(queue);
    series.events[outcome] += 1;
    series.run[outcome].observe(runSeconds);
    series.recentRun.record(this.#now(), runSeconds * 1000);
    if (latencySeconds !== undefined) series.latency.observe(latencySeconds);
  }

  /** `queue`'s wait and run time p50/p95 over the last 5 minutes (at most the last 1 000 of each). */
  timings(queue: string): QueueTimings {
    const series = this.#bound.get(queue);
    if (series === undefined) return emptyTimings();
    const since = this.#now() - TIMINGS_WINDOW_MS;
    return {
      windowMs: TIMINGS_WINDOW_MS,
      wait: series.recentWait.stats(since),
      run: series.recentRun.stats(since),
    };
  }

  /** One queue's tallies, made on its first event. */
  #series(queue: string): QueueSeries {
    let series = this.#bound.get(queue);
    if (series === undefined) {
      const run = (outcome: JobOutcome) => this.#run.series({ queue, outcome });
      series = {
        queue,
        events: { added: 0, started: 0, completed: 0, retried: 0, dead: 0 },
        wait: this.#wait.series({ queue }),
        run: { completed: run('completed'), retried: run('retried'), dead: run('dead') },
        latency: this.#latency.series({ queue }),
        recentWait: new RecentDurations(),
        recentRun: new RecentDurations(),
      };
      this.#bound.set(queue, series);
    }
    return series;
  }

  recovered(n: number): void {
    this.#events.inc({ queue: '*', event: 'recovered' }, n);
  }
}

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { emptyTimings, RecentDurations, TIMINGS_WINDOW_MS } from './timings.js';
import type { QueueCounts, QueueTimings } from './types.js';

const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

interface QueueSeries {
  added: { inc(n?: number): void };
  started: { inc(n?: number): void };
  completed: { inc(n?: number): void };
  retried: { inc(n?: number): void };
  dead: { inc(n?: number): void };
  wait: { observe(value: number): void };
  run: Record<JobOutcome, { observe(value: number): void }>;
  latency: { observe(value: number): void };
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
 * It also keeps each queue's latest wait and run times for {@link timings} (the admin API's p50/p95).
 * `now` (default `Date.now`) stamps them.
 */
export class QueueMetrics {
  readonly #events: Counter<'queue' | 'event'>;
  readonly #wait: Histogram<'queue'>;
  readonly #run: Histogram<'queue' | 'outcome'>;
  readonly #latency: Histogram<'queue'>;
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
    this.#events = new Counter({
      name: 'bulwark_queue_jobs_total',
      help: 'Job events per queue: added, started, completed, retried, dead, recovered.',
      labelNames: ['queue', 'event'],
      registers: [registry],
    });
    this.#wait = new Histogram({
      name: 'bulwark_queue_wait_seconds',
      help: 'Time from a job being due (added, or its retry time) to an attempt starting.',
      labelNames: ['queue'],
      buckets: BUCKETS,
      registers: [registry],
    });
    this.#run = new Histogram({
      name: 'bulwark_queue_run_seconds',
      help: 'Duration of one attempt, by outcome.',
      labelNames: ['queue', 'outcome'],
      buckets: BUCKETS,
      registers: [registry],
    });
    this.#latency = new Histogram({
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
    this.#series(queue).added.inc(n);
  }

  /** An attempt started, `waitSeconds` after its job fell due (undefined: not known, not observed). */
  started(queue: string, waitSeconds: number | undefined): void {
    const series = this.#series(queue);
    series.started.inc();
    if (waitSeconds === undefined) return;
    const wait = Math.max(0, waitSeconds);
    series.wait.observe(wait);
    series.recentWait.record(this.#now(), wait * 1000);
  }

  finished(queue: string, outcome: JobOutcome, runSeconds: number, latencySeconds: number | undefined): void {
    const series = this.#series(queue);
    series[outcome].inc();
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

  /**
   * The labelled children of one queue, bound once: prom-client hashes a labels object on every
   * `inc`/`observe` otherwise, a cost paid per job at tens of thousands of jobs per second.
   */
  #series(queue: string): QueueSeries {
    let series = this.#bound.get(queue);
    if (series === undefined) {
      const event = (name: string) => this.#events.labels({ queue, event: name });
      const run = (outcome: JobOutcome) => this.#run.labels({ queue, outcome });
      series = {
        added: event('added'),
        started: event('started'),
        completed: event('completed'),
        retried: event('retried'),
        dead: event('dead'),
        wait: this.#wait.labels({ queue }),
        run: { completed: run('completed'), retried: run('retried'), dead: run('dead') },
        latency: this.#latency.labels({ queue }),
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

// The event loop's signals, per interval: delay p99 (how late a timer fires: how long any request
// waits for the loop), utilisation (how busy the loop was: a late timer on an idle loop means
// another process has the CPU, and shedding would not help) and long garbage-collection pauses.
import {
  monitorEventLoopDelay,
  performance,
  PerformanceObserver,
  type EventLoopUtilization,
} from 'node:perf_hooks';
import type { LoopSignals } from './types.js';

/** A GC pause at least this long (ms) marks the interval. */
const LONG_GC_MS = 20;
const RESOLUTION_MS = 10;

/** Samples the event loop; `read()` returns the signals since the previous read. */
export class LoopSampler {
  readonly #delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  #elu: EventLoopUtilization = performance.eventLoopUtilization();
  #gcPause = false;
  readonly #observer: PerformanceObserver;

  constructor() {
    this.#delay.enable();
    this.#observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) if (entry.duration >= LONG_GC_MS) this.#gcPause = true;
    });
    this.#observer.observe({ entryTypes: ['gc'] });
  }

  /** The signals of the interval since the last read; starts the next interval. */
  read(): LoopSignals {
    const elu = performance.eventLoopUtilization(this.#elu);
    this.#elu = performance.eventLoopUtilization();
    // The histogram holds the time between the sampling timer's runs, in ns (on an idle loop, about
    // the resolution); with no sample yet (an interval shorter than the resolution), nothing.
    const delayP99Ms =
      this.#delay.count > 0 ? Math.max(0, this.#delay.percentile(99) / 1e6 - RESOLUTION_MS) : 0;
    this.#delay.reset();
    const gcPause = this.#gcPause;
    this.#gcPause = false;
    return { delayP99Ms, utilisation: elu.utilization, gcPause };
  }

  close(): void {
    this.#delay.disable();
    this.#observer.disconnect();
  }
}

import { readdir } from 'node:fs/promises';
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import type { EventEmitter } from 'node:events';
import v8 from 'node:v8';
import type { LeakSignal } from './types.js';

/** One sample of the signals; a signal this platform cannot read is absent. */
export type SignalSample = Partial<Record<LeakSignal, number>>;

/** The signals read after major garbage collections rather than at each sample. */
export const AFTER_GC_SIGNALS: ReadonlySet<LeakSignal> = new Set(['heap_after_gc', 'rss']);

/**
 * Reads the process's leak signals. Memory is judged after major garbage collections, when what is
 * left is what is still referenced: between them the heap and RSS saw-tooth with garbage that the
 * next collection frees (a process that only churns looks like it leaks tens of MiB a minute). So
 * the heap in use and RSS are read when a major GC ends, and a sample carries the least readings
 * since the previous sample, or none when no major GC ran (the window then has fewer points).
 */
export class ProcessSignals {
  readonly #emitters = new Map<string, EventEmitter>();
  #observer: PerformanceObserver | undefined;
  #heap = Number.POSITIVE_INFINITY;
  #rss = Number.POSITIVE_INFINITY;
  /** The last count of open descriptors, and the count under way (see {@link countDescriptors}). */
  #fds: number | undefined;
  #counting: Promise<void> | undefined;

  /** Starts observing garbage collections, and counts the open descriptors for the first sample. */
  start(): void {
    if (this.#observer !== undefined) return;
    this.#observer = new PerformanceObserver((list) => this.#onGc(list.getEntries()));
    this.#observer.observe({ entryTypes: ['gc'] });
    void this.countDescriptors();
  }

  /**
   * Counts the open descriptors off the event loop (`/proc/self/fd` listed by the thread pool: with
   * 11,000 sockets open, a synchronous listing held the loop for 10–17 ms at every sample). A sample
   * carries the last finished count, the one its predecessor asked for (a slope is the same, one
   * interval later), and asks for the next; resolves when the count under way ends.
   */
  countDescriptors(): Promise<void> {
    this.#counting ??= openDescriptors().then((fds) => {
      this.#fds = fds;
      this.#counting = undefined;
    });
    return this.#counting;
  }

  /** Counts the listeners of `emitter` (a long-lived one: a shared client, a bus) under `name`. */
  watchEmitter(name: string, emitter: EventEmitter): () => void {
    this.#emitters.set(name, emitter);
    return () => this.#emitters.delete(name);
  }

  /** Every signal now (memory only when a major GC ran since the last call); resets the readings. */
  read(): SignalSample {
    const sample: SignalSample = {
      handles: process.getActiveResourcesInfo().length,
      listeners: this.#listeners(),
    };
    if (this.#heap !== Number.POSITIVE_INFINITY) sample.heap_after_gc = this.#heap;
    if (this.#rss !== Number.POSITIVE_INFINITY) sample.rss = this.#rss;
    this.#heap = Number.POSITIVE_INFINITY;
    this.#rss = Number.POSITIVE_INFINITY;
    if (this.#fds !== undefined) sample.fds = this.#fds;
    void this.countDescriptors();
    return sample;
  }

  /** Active resources by type (`TCPSocketWrap`, `Timeout`, ...), most first: what a handle leak is made of. */
  handleTypes(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
    return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1]));
  }

  stop(): void {
    this.#observer?.disconnect();
    this.#observer = undefined;
  }

  #onGc(entries: PerformanceEntry[]): void {
    const major = entries.some(
      (entry) =>
        (entry as PerformanceEntry & { detail?: { kind?: number } | null }).detail?.kind ===
        constants.NODE_PERFORMANCE_GC_MAJOR,
    );
    if (!major) return;
    // Read once per batch: the observer runs soon after the collections it reports.
    this.#heap = Math.min(this.#heap, v8.getHeapStatistics().used_heap_size);
    this.#rss = Math.min(this.#rss, process.memoryUsage.rss());
  }

  #listeners(): number {
    let total = 0;
    for (const emitter of [process, ...this.#emitters.values()])
      for (const event of emitter.eventNames()) total += emitter.listenerCount(event);
    return total;
  }
}

/** Open file descriptors of this process (Linux's `/proc/self/fd`), undefined elsewhere. */
async function openDescriptors(): Promise<number | undefined> {
  try {
    // The listing itself holds one descriptor while it reads the directory.
    return (await readdir('/proc/self/fd')).length - 1;
  } catch {
    return undefined;
  }
}

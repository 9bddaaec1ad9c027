/** What leak detection watches, each sampled every interval. */
export const LEAK_SIGNALS = ['heap_after_gc', 'rss', 'handles', 'fds', 'listeners'] as const;

/**
 * One watched signal: `heap_after_gc` (bytes of heap in use right after garbage collections),
 * `rss` (resident bytes), `handles` (active libuv resources: sockets, timers, servers, ...),
 * `fds` (open file descriptors, where `/proc/self/fd` exists), `listeners` (event listeners on
 * `process` and on the emitters given to `watchEmitter`).
 */
export type LeakSignal = (typeof LEAK_SIGNALS)[number];

/**
 * The growth each signal may show without being called a leak, per minute. Handles and descriptors
 * follow the traffic (one socket per connection), so their budgets leave room for a ramp.
 */
export const DEFAULT_LEAK_BUDGETS: Readonly<Record<LeakSignal, number>> = {
  heap_after_gc: 1_048_576,
  rss: 4 * 1_048_576,
  handles: 5,
  fds: 5,
  listeners: 1,
};

/** Options of leak detection (`createBulwark({ leaks })`); `false` turns it off. */
export interface LeakOptions {
  /** Time between samples, ms (default 10 000). */
  intervalMs?: number | undefined;
  /** The window the slope is fitted over, ms (default 600 000: 10 minutes). */
  windowMs?: number | undefined;
  /** Growth allowed per minute, by signal (defaults {@link DEFAULT_LEAK_BUDGETS}). */
  budgets?: Partial<Record<LeakSignal, number>> | undefined;
  /**
   * Samples taken in this time after the start are not judged, ms (default 60 000): loading modules,
   * filling caches and compiling make every process grow at first.
   */
  warmupMs?: number | undefined;
  /** Samples a window needs before it can report (default 10). */
  minSamples?: number | undefined;
  /** A store connection checked out longer than this is reported, ms (default 30 000). */
  checkoutHeldMs?: number | undefined;
  /** Heap snapshots kept in `<dataDir>/heap/` (default 3; the oldest goes first). */
  maxSnapshots?: number | undefined;
  /** A snapshot is refused while the heap in use is above this, bytes (default 1 GiB). */
  maxSnapshotHeapBytes?: number | undefined;
}

/** One signal as last judged. */
export interface SignalReport {
  signal: LeakSignal;
  /** The newest sample (bytes or a count). */
  value: number;
  /** Samples in the window. */
  samples: number;
  /** From the oldest to the newest sample in the window, ms. */
  spanMs: number;
  /** The fitted growth per minute (undefined with too few samples). */
  slopePerMin: number | undefined;
  /** The lower end of its two-sided 95 % confidence interval, per minute. */
  lowerPerMin: number | undefined;
  budgetPerMin: number;
  /** The lower bound stays above the budget over a full window. */
  suspected: boolean;
}

/** What leak detection found at its last sample. */
export interface LeakReport {
  /** When the last sample was taken, ms since the epoch (undefined before the first). */
  at: number | undefined;
  /** False while the `bulwark.leaks` flag is off. */
  enabled: boolean;
  signals: SignalReport[];
  /** Store connections held longer than `checkoutHeldMs`; undefined on SQLite (no pool). */
  heldConnections: { heldMs: number; stack: string; lastQuery: string | undefined }[] | undefined;
}

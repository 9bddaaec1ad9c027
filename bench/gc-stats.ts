// A benchmark server's garbage collections, as its own GC observer reports them over IPC
// (bench/servers/gc-report.ts), read per window of the run: how many full (mark-compact)
// collections finished in it, how long collections held the main thread per response, and how fast
// V8's old generation grew (what outlived the young generation).

/** One report: what finished since the previous one. `at` is the server's wall clock (ms). */
export interface GcSample {
  type: 'gc';
  at: number;
  /** Scavenges (young generation) and the ms they held the main thread. */
  minor: number;
  minorMs: number;
  /** Full (mark-compact) collections, and the ms they and their incremental marking steps held it. */
  full: number;
  fullMs: number;
  /** Bytes V8's old generation holds now. */
  oldBytes: number;
}

/** A window's collections. */
export interface GcWindow {
  full: number;
  /** µs the main thread spent in collections, per response the app gave in the window. */
  pausePerResponse: number | undefined;
  /** MB per second the old generation grew: the sum of its rises between reports (a collection shrinks it). */
  oldGrowth: number;
}

/** A server's reports, in the order they came. */
export class GcLog {
  readonly #samples: GcSample[] = [];

  add(sample: GcSample): void {
    this.#samples.push(sample);
  }

  /**
   * The reports that came in (from, to] (each covers the interval before it), read as one window;
   * `from` and `to` are ms after `origin`, a wall-clock time (the start of the measured load).
   */
  window(origin: number, from: number, to: number, responses: number): GcWindow | undefined {
    const inside = this.#samples.filter((s) => s.at - origin > from && s.at - origin <= to);
    if (inside.length === 0) return undefined;
    const previous = this.#samples[this.#samples.indexOf(inside[0]!) - 1];
    let rises = 0;
    let last = previous?.oldBytes ?? inside[0]!.oldBytes;
    for (const s of inside) {
      rises += Math.max(0, s.oldBytes - last);
      last = s.oldBytes;
    }
    const pauseMs = inside.reduce((sum, s) => sum + s.minorMs + s.fullMs, 0);
    return {
      full: inside.reduce((sum, s) => sum + s.full, 0),
      pausePerResponse: responses === 0 ? undefined : (pauseMs * 1000) / responses,
      oldGrowth: rises / 1e6 / ((to - from) / 1000),
    };
  }
}

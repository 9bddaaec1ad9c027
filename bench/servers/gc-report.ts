// A benchmark server's garbage collections, reported to the benchmark over IPC every `everyMs`
// (bench/gc-stats.ts reads them): scavenges and full (mark-compact) collections finished since the
// last report, the ms they held the main thread, and the bytes V8's old generation holds. The
// observer is V8's own GC callback and a report is six numbers: it costs the server next to nothing.
import { constants, PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import type { GcSample } from '../gc-stats.js';

export function reportGc(everyMs = 250): void {
  const zero = () => ({ minor: 0, minorMs: 0, full: 0, fullMs: 0 });
  let since = zero();
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        since.minor += 1;
        since.minorMs += entry.duration;
      } else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        since.full += 1;
        since.fullMs += entry.duration;
      } else if (kind === constants.NODE_PERFORMANCE_GC_INCREMENTAL) since.fullMs += entry.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  setInterval(() => {
    const old = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space');
    const sample: GcSample = { type: 'gc', at: Date.now(), ...since, oldBytes: old?.space_used_size ?? 0 };
    process.send?.(sample);
    since = zero();
  }, everyMs).unref();
}

import path from 'node:path';
import type { Part } from '../parts/index.js';
import type { Store } from '../store/types.js';
import type { LeakDetector } from './detector.js';
import type { HeapSnapshots } from './snapshots.js';
import type { LeakOptions } from './types.js';

/** Leak detection as `bulwark.leaks` holds it. */
export interface Leaks {
  /** The signals, their slopes and the held store connections: `report()`, `sampleNow()`, `watchEmitter()`. */
  readonly detector: LeakDetector;
  /** Heap snapshots on demand in `<dataDir>/heap/`: `take()`, `list()`. */
  readonly snapshots: HeapSnapshots;
}

/**
 * Leak detection (see docs/leaks.md): heap after GC, RSS, handles, descriptors and listeners sampled
 * every 10 s, a leak being a slope whose 95 % lower bound stays above its budget over 10 minutes;
 * store connections held too long; heap snapshots on demand. Reported in the `leaks:growth` health
 * check (warn, never failing readiness) and the `bulwark_leak_*` metrics. Off with `false`; follows
 * the flag `bulwark.leaks`.
 */
export function leaksPart(
  options: LeakOptions | false | undefined,
): Part<'leaks', Leaks | undefined, { store: Store }> {
  return {
    name: 'leaks',
    needs: ['store'],
    checks: ['leaks:growth'],
    flags: () => [
      {
        key: 'bulwark.leaks',
        description: 'Leak detection. Off: no samples are judged and no leak is reported.',
      },
    ],
    async start({ store }, { settings, metrics, health, logger }) {
      if (options === false) return undefined;
      const [{ LeakDetector }, { HeapSnapshots }] = await Promise.all([
        import('./detector.js'),
        import('./snapshots.js'),
      ]);
      const detector = new LeakDetector({
        ...options,
        registry: metrics.registry,
        logger,
        checkouts: store.checkouts,
      });
      health.register({
        name: 'leaks:growth',
        componentType: 'system',
        critical: false,
        intervalMs: detector.intervalMs,
        check: () => detector.health(),
      });
      detector.start();
      return {
        detector,
        snapshots: new HeapSnapshots({
          dir: path.join(settings.dataDir, 'heap'),
          max: options?.maxSnapshots,
          maxHeapBytes: options?.maxSnapshotHeapBytes,
        }),
      };
    },
    close: (leaks) => leaks?.detector.close(),
    follow: (leaks) => ({
      'bulwark.leaks': (on) => {
        if (leaks !== undefined) leaks.detector.enabled = on;
      },
    }),
  };
}

import type { Part } from '../parts/index.js';
import type { Store } from '../store/types.js';
import type { MetricsHistory, MetricsHistoryOptions } from './history.js';

/** Sampling interval, tiers and compaction of the metrics history; `false` turns it off. */
export type HistoryPartOptions =
  false | Pick<MetricsHistoryOptions, 'intervalMs' | 'tiers' | 'compactEveryMs'>;

/**
 * The embedded metrics history (`metrics.history`): key series sampled into the store every 10 s by
 * default, downsampled, queryable. Off (undefined) with `false`.
 */
export function historyPart(
  options: HistoryPartOptions | undefined,
): Part<'history', MetricsHistory | undefined, { store: Store }> {
  return {
    name: 'history',
    needs: ['store'],
    checks: [],
    // Also when the history is off: a database has one schema history whatever a process starts.
    migrations: async () => (await import('./history-migrations.js')).historyMigrations(),
    async start({ store }, { metrics, logger }) {
      if (options === false) return undefined;
      const { MetricsHistory } = await import('./history.js');
      const history = new MetricsHistory({ store, registry: metrics.registry, logger, ...options });
      metrics.history = history;
      history.start();
      return history;
    },
    close: (history) => history?.close(),
  };
}

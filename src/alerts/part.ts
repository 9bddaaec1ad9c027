import type { FlagService } from '../flags/service.js';
import type { MetricsHistory } from '../metrics/history.js';
import type { Part } from '../parts/index.js';
import type { JobQueue } from '../queue/types.js';
import type { Store } from '../store/types.js';
import type { AlertsConfig } from './config.js';
import type { AlertEngine } from './engine.js';

/**
 * Alerting (undefined without a configuration): rules over the metrics history, their actions
 * (kill a flag, pause a queue), notifications once per transition through a durable outbox, and
 * the scheduled reports.
 */
export function alertsPart(
  config: AlertsConfig | undefined,
): Part<
  'alerts',
  AlertEngine | undefined,
  { store: Store; flags: FlagService; queues: JobQueue; history: MetricsHistory | undefined }
> {
  return {
    name: 'alerts',
    needs: ['store', 'flags', 'queues', 'history'],
    checks: [],
    // Also without a configuration: a database has one schema history whatever a process starts.
    migrations: async (engine) => (await import('./migrations.js')).alertsMigrations(engine),
    async start(needs, { logger, serviceId, instanceId }) {
      if (config === undefined) return undefined;
      // Loaded only when configured: the engine, its notifiers (SMTP) and reports.
      const { startAlerts } = await import('./start.js');
      return startAlerts(config, { ...needs, logger, serviceId, instanceId });
    },
    close: (engine) => engine?.close(),
  };
}

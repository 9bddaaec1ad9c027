import type { TieredCache } from '../cache/tiered.js';
import type { MetricsHistory } from '../metrics/history.js';
import type { Part } from '../parts/index.js';
import type { JobQueue } from '../queue/types.js';
import type { SupervisorClient } from './client.js';

/**
 * The link to `bulwark supervise` when running under it (else undefined): heartbeats, the ready
 * message, the supervisor's series in the metrics history, and the built-in recovery.
 */
export function supervisorPart(): Part<
  'supervisor',
  SupervisorClient | undefined,
  { cache: TieredCache; queues: JobQueue; history: MetricsHistory | undefined }
> {
  return {
    name: 'supervisor',
    needs: ['cache', 'queues', 'history'],
    checks: [],
    async start({ cache, queues, history }, { logger, version, supervised }) {
      // The implementation loads when the part starts: a command that opens no supervisor link never loads it.
      const [{ SupervisorClient }, { registerSupervisorSeries }] = await Promise.all([
        import('./client.js'),
        import('./series.js'),
      ]);
      if (history !== undefined) registerSupervisorSeries(history);
      const client = supervised === true ? SupervisorClient.connect({ logger, version }) : undefined;
      return connectSupervisor(client, cache, queues);
    },
    close: (supervisor) => supervisor?.close(),
  };
}

/**
 * The supervisor link with the built-in recovery. Soft: drop this process's L1 cache, collect
 * garbage when exposed. Medium: the same, and hold this process's background jobs (other
 * instances keep running them) until the supervisor says the pressure is gone.
 */
function connectSupervisor(
  supervisor: SupervisorClient | undefined,
  cache: TieredCache,
  queues: JobQueue,
): SupervisorClient | undefined {
  supervisor?.onRecover(async ({ level }) => {
    if (level === 'normal') {
      if (!queues.heldLocal) return [];
      queues.holdLocal(false, 'supervisor');
      return [
        queues.heldLocal
          ? 'released its hold of the background jobs (still held by another)'
          : 'released the background jobs',
      ];
    }
    const actions: string[] = [];
    const entries = await cache.dropLocal();
    actions.push(`dropped the L1 cache (${entries ?? 'all'} entries)`);
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined) actions.push('gc not exposed (run node with --expose-gc)');
    else {
      gc();
      actions.push('ran gc');
    }
    if (level === 'medium') {
      queues.holdLocal(true, 'supervisor');
      actions.push('held the background jobs of this instance');
    }
    return actions;
  });
  return supervisor;
}

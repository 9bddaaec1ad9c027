import type { MetricsHistory } from '../metrics/history.js';
import type { Part } from '../parts/index.js';
import type { Protection, ProtectionOptions } from './index.js';

export type { ProtectionOptions } from './index.js';

/**
 * Load shedding (`bulwark.protection`): adaptive concurrency with request classes, engaged by the
 * Fastify plugin's `protection` option. Follows the flag `bulwark.protection`.
 */
export function protectionPart(
  options: ProtectionOptions | boolean = {},
): Part<'protection', Protection, { history: MetricsHistory | undefined }> {
  return {
    name: 'protection',
    // Its series (the limit, requests shed a second) go to the metrics history when there is one.
    needs: ['history'],
    checks: ['protection:shedding'],
    flags: () => [
      {
        key: 'bulwark.protection',
        description: 'Load shedding of HTTP requests. Off: every request is admitted (kill switch).',
      },
    ],
    async start({ history }, { logger, metrics, health }) {
      const protection = new (await import('./index.js')).Protection({
        ...(typeof options === 'boolean' ? {} : options),
        logger,
        registry: metrics.registry,
        health,
      });
      if (history !== undefined) protection.recordInto(history);
      return protection;
    },
    close: (protection) => protection.close(),
    follow: (protection) => ({ 'bulwark.protection': (on) => (protection.enabled = on) }),
  };
}

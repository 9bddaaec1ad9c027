import type { Part } from '../parts/index.js';
import type { Protection, ProtectionOptions } from './index.js';

export type { ProtectionOptions } from './index.js';

/**
 * Load shedding (`bulwark.protection`): adaptive concurrency with request classes, engaged by the
 * Fastify plugin's `protection` option. Follows the flag `bulwark.protection`.
 */
export function protectionPart(options: ProtectionOptions | boolean = {}): Part<'protection', Protection> {
  return {
    name: 'protection',
    needs: [],
    checks: ['protection:shedding'],
    flags: () => [
      {
        key: 'bulwark.protection',
        description: 'Load shedding of HTTP requests. Off: every request is admitted (kill switch).',
      },
    ],
    start: async (_needs, { logger, metrics, health }) =>
      new (await import('./index.js')).Protection({
        ...(typeof options === 'boolean' ? {} : options),
        logger,
        registry: metrics.registry,
        health,
      }),
    close: (protection) => protection.close(),
    follow: (protection) => ({ 'bulwark.protection': (on) => (protection.enabled = on) }),
  };
}

import { hostname } from 'node:os';
import type { FlagService } from '../flags/service.js';
import type { Part } from '../parts/index.js';
import type { Store } from '../store/types.js';
import type { ErrorTracker } from './tracker.js';

/**
 * Error tracking in the store (groups, samples, regressions); forwards to Sentry with `SENTRY_DSN`.
 * Follows the flags `bulwark.errors`, `bulwark.errors.sample` and, with Sentry, `bulwark.errors.sentry`.
 */
export function errorsPart(): Part<'errors', ErrorTracker, { store: Store; flags: FlagService }> {
  return {
    name: 'errors',
    needs: ['store', 'flags'],
    checks: [],
    migrations: async (engine) => (await import('./migrations.js')).errorsMigrations(engine),
    flags: (settings) => [
      {
        key: 'bulwark.errors',
        description: 'Error tracking. Off: nothing is captured, stored or forwarded.',
      },
      {
        key: 'bulwark.errors.sample',
        description:
          'Per captured error: whether it is kept as a sample and forwarded. A rollout percentage samples; counts stay exact.',
      },
      ...(settings.sentryDsn === undefined
        ? []
        : [
            {
              key: 'bulwark.errors.sentry',
              description: 'Forwarding to Sentry. Off: errors are tracked here only (kill switch).',
            },
          ]),
    ],
    async start({ store, flags }, { settings, logger, metrics, version }) {
      const [{ SentryForwarder }, { ErrorStore }, { ErrorTracker }] = await Promise.all([
        import('./sentry.js'),
        import('./store.js'),
        import('./tracker.js'),
      ]);
      return new ErrorTracker({
        errors: new ErrorStore(store.db),
        audit: store.audit,
        logger,
        flags,
        release: version,
        registry: metrics.registry,
        ...(settings.sentryDsn === undefined
          ? {}
          : {
              sentry: await SentryForwarder.create({
                dsn: settings.sentryDsn,
                release: version,
                environment: settings.nodeEnv,
                serverName: hostname(),
                logger,
              }),
            }),
      });
    },
    close: (errors) => errors.close(),
  };
}

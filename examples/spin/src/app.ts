// Spin as an app: Bulwark with Spin's own part (its tables and its matching service), the Bulwark
// Fastify plugin (health, metrics, the admin API and console, rate limits, coded errors) and Spin's
// routes. Built without listening, so tests use it over a real port or `app.inject()`.
import Fastify, { type FastifyInstance } from 'fastify';
import { createBulwark, DEFAULT_RATE_LIMIT_POLICY, withAlertRules } from 'bulwark';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bulwark as bulwarkPlugin, fastifyOptions, webPages } from 'bulwark/fastify';
import type { BulwarkOptions, Part, Store } from 'bulwark';
import { SpinNotifier, type MailOptions } from './notify.js';
import { spinRoutes } from './routes.js';
import { spinMigrations } from './schema.js';
import { SpinService, type SpinServiceOptions } from './service.js';
import { QUEUE_STATUS_POLICY, spinAlertRules, spinStats } from './stats-routes.js';
import { TEST_ENDPOINTS_FLAG, TEST_RATE_LIMIT_POLICY, testEndpoints } from './test-endpoints.js';

/** Tuning of Spin (tests shorten the intervals). */
export type SpinOptions = Omit<SpinServiceOptions, 'store' | 'logger' | 'instanceId'>;

/**
 * Spin's part: its migrations (`1000_spin`, applied after Bulwark's) and its matching service,
 * started once the store is open and closed before it.
 */
export function spinPart(options: SpinOptions = {}): Part<'spin', SpinService, { store: Store }> {
  return {
    name: 'spin',
    needs: ['store'],
    checks: [],
    flags: () => [TEST_ENDPOINTS_FLAG],
    migrations: async (engine) => spinMigrations(engine),
    async start({ store }, { logger, instanceId }) {
      const spin = new SpinService({ ...options, store, logger, instanceId });
      await spin.start();
      return spin;
    },
    close: (spin) => spin.close(),
  };
}

/**
 * Where `vite build` put Spin's pages: dist/spin/web, found from this module whether it runs from
 * the bundle (dist/spin/server.js) or from its source (tests).
 */
function webDir(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return [path.resolve(here, 'web'), path.resolve(here, '../../../dist/spin/web')].find((dir) =>
    existsSync(path.join(dir, 'index.html')),
  );
}

/** Spin's rate-limit policies, besides Bulwark's default. */
const POLICIES = [
  DEFAULT_RATE_LIMIT_POLICY,
  { name: 'spin-signup', limit: 20, windowMs: 60_000 },
  { name: 'spin-user', limit: 60, windowMs: 60_000 },
  QUEUE_STATUS_POLICY,
  TEST_RATE_LIMIT_POLICY,
];

export async function buildSpin(
  options: BulwarkOptions & {
    spin?: SpinOptions;
    mail?: MailOptions;
    /** Where the pages' build is (default dist/spin/web); tests serve a build of their own. */
    webDir?: string;
  } = {},
): Promise<FastifyInstance & { spin: SpinService; notifier: SpinNotifier }> {
  const { spin: spinOptions, mail, webDir: pagesDir, ...bulwarkOptions } = options;
  const env = options.env ?? process.env;
  const bulwark = await createBulwark({
    serviceId: 'spin',
    rateLimitPolicies: { policies: POLICIES },
    parts: (parts) => [...parts, spinPart(spinOptions)],
    // Spin's alert rules join whatever the operator configured (the alerts option or BULWARK_ALERTS_FILE).
    ...(await withAlertRules(bulwarkOptions, spinAlertRules())),
    // Every request reads its user by token from the cache: room for more users than wait at once
    // (10,000 and more), or each is evicted before its next request (~300 bytes each).
    cache: { maxEntries: 100_000, ...bulwarkOptions.cache },
  });
  const spin = bulwark.parts.get('spin') as SpinService;
  const app = Fastify(fastifyOptions(bulwark)) as unknown as FastifyInstance;
  const notifier = new SpinNotifier({
    bulwark,
    spin,
    mail: mail ?? { smtpUrl: env['SPIN_SMTP_URL'], from: env['SPIN_MAIL_FROM'] },
  });
  try {
    await app.register(bulwarkPlugin, {
      bulwark,
      title: 'Spin',
      rateLimit: { default: false },
      // Load shedding: votes are critical, the public status pages sheddable, the rest default.
      protection: true,
      // The queue dashboard (a page of Spin's, /dashboard) in the console's navigation.
      console: { links: [{ name: 'Spin queue dashboard', href: '/dashboard' }] },
      securitySchemes: {
        spinUser: { type: 'http', scheme: 'bearer', description: 'the token POST /api/users answered' },
        spinTestKey: {
          type: 'http',
          scheme: 'bearer',
          description: 'a key of SPIN_TEST_API_KEYS (or X-Test-Key)',
        },
      },
    });
    app.addHook('onClose', async () => {
      notifier.close();
      await bulwark.close();
    });
    notifier.start();
    await app.register(spinRoutes, { bulwark, spin });
    await app.register(spinStats, { bulwark, spin });
    await app.register(testEndpoints, { bulwark, spin, env });
    // The pages (examples/spin/web, built by `npm run build`) at / and every path of theirs.
    await webPages(app, { dir: pagesDir ?? webDir(), base: '/', reserved: ['/api/'] });
    await app.ready();
  } catch (error) {
    await app.close().catch(() => undefined);
    await bulwark.close();
    throw error;
  }
  return Object.assign(app, { spin, notifier });
}

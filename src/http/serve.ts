// Running an app built on Bulwark as a server process: what `npm start` does for the demo and for
// Spin, and what a user's own `server.ts` can do in one call.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Access } from '../access/types.js';
import { isBulwarkError, type BulwarkError } from '../errors/index.js';
import type { Bulwark } from '../runtime/create.js';
import { installShutdown } from '../runtime/shutdown.js';
import { installProcessErrorHandlers } from '../tracker/index.js';

/**
 * Errors that mean the configuration is wrong (the environment, the alerts file, the service's
 * config file with no good revision to fall back to): exit 78, EX_CONFIG, which the supervisor does
 * not restart, since a restart would fail the same way.
 */
const CONFIGURATION_ERRORS = [
  'BWK_ERR_SETTINGS_INVALID',
  'BWK_ERR_ALERTS_CONFIG',
  'BWK_ERR_CONFIG_PARSE',
  'BWK_ERR_CONFIG_INVALID',
] as const;

/** Options of {@link serveApp}. */
export interface ServeOptions {
  /** The app's name in the banner ("spin listening on …"). */
  name: string;
  /** Extra lines of the banner: label → path (`{ app: '/' }`). */
  links?: Record<string, string>;
  /**
   * Runs once the app is built, before it listens, so before a supervisor or a load balancer sends
   * it traffic: for example a burst of requests on a scratch copy of the app, so that V8 has
   * compiled and optimised the hot paths before the first real request (Spin's `warmUp`). Given the
   * app's logger; what it resolves with is logged with its duration. A failure is logged as a
   * warning and the app starts anyway, only colder.
   */
  warmUp?: (logger: Logger) => Promise<Record<string, unknown> | void>;
}

/**
 * Builds the app and serves it on the settings' host and port: a configuration error prints what is
 * wrong (every bad field when there are several) and exits 78 before anything listens, other start
 * failures exit 1; then the graceful shutdown on SIGTERM/SIGINT, the capture of unhandled errors
 * (written, then exit 1 for the supervisor to restart), the listen (a port it cannot have: said,
 * exit 1), the one-time admin login link
 * on a first start, and a banner on stderr naming where everything is. `build` must register the
 * Bulwark plugin (`app.bulwark`). Resolves with the listening app.
 */
export async function serveApp(
  build: () => Promise<FastifyInstance>,
  options: ServeOptions,
): Promise<FastifyInstance> {
  let app: FastifyInstance;
  try {
    app = await build();
  } catch (error) {
    if (CONFIGURATION_ERRORS.some((code) => isBulwarkError(error, code))) {
      const { code, message, details } = error as BulwarkError;
      const problems = details ?? [];
      console.error(
        `${options.name}: refusing to start, invalid configuration (${code}):${problems.length === 0 ? ` ${message}` : ''}`,
      );
      for (const problem of problems) console.error(`  ${problem.field}: ${problem.message}`);
      process.exit(78);
    } else if (isBulwarkError(error)) {
      console.error(`${options.name}: refusing to start (${error.code}): ${error.message}`);
    } else {
      console.error(`${options.name}: failed to start:`, error);
    }
    process.exit(1);
  }
  const { settings, logger } = app.bulwark;
  installShutdown(app, { timeoutMs: settings.shutdownTimeoutMs, logger });
  installProcessErrorHandlers(app.bulwark.errors, { logger });
  if (options.warmUp !== undefined) await warmUp(options.warmUp, logger);
  try {
    await app.listen({ port: settings.port, host: settings.host });
  } catch (error) {
    // The port is taken, or not ours to bind: said once, and no half-started process left.
    console.error(
      `${options.name}: cannot listen on ${settings.host}:${settings.port}: ${(error as Error).message}`,
    );
    await app.close().catch(() => undefined);
    process.exit(1);
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : settings.port;
  const base = `http://${settings.host.includes(':') ? `[${settings.host}]` : settings.host}:${port}`;
  // Before the banner: once a test (or a person) sees the banner, the link is out too, or will not come.
  await printFirstLogin(app.bulwark, settings.host, port);
  const links = {
    ...options.links,
    health: '/health',
    metrics: '/metrics',
    'API docs': '/api-docs',
    console: '/admin',
  };
  const width = Math.max(...Object.keys(links).map((label) => label.length));
  console.error(
    [
      `${options.name} listening on ${base}`,
      ...Object.entries(links).map(([label, path]) => `  ${label.padEnd(width)} ${base}${path}`),
    ].join('\n'),
  );
  return app;
}

/** Runs the app's warm-up and logs what it did and how long it took (a failure as a warning). */
async function warmUp(run: NonNullable<ServeOptions['warmUp']>, logger: Logger) {
  const started = performance.now();
  try {
    const done = await run(logger);
    logger.info({ ...done, warmUpMs: Math.round(performance.now() - started) }, 'warmed up');
  } catch (error) {
    logger.warn({ err: error }, 'the warm-up failed: starting without it');
  }
}

/**
 * The first start with no admin key: one line on stdout with a one-time link that opens the console
 * as the operator key `bootstrap` (see `Access.prepareFirstLogin`), and how to make a permanent key.
 * A new link at each start until it is used; nothing once any other key exists or with
 * BULWARK_ADMIN_KEY. The token is in the URL's fragment, which a browser never sends in a request.
 */
async function printFirstLogin(bulwark: Bulwark, host: string, port: number): Promise<void> {
  try {
    const token = await (bulwark.parts.get('access') as Access | undefined)?.prepareFirstLogin();
    if (token === undefined) return;
    // A wildcard address is where the server listens, not where a browser can reach it.
    const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    // On stdout, where a newcomer looks (the logger's lines and the banner are on stderr).
    process.stdout.write(
      `Admin console: open http://${shown}:${port}/admin/login#token=${token} (one-time link, valid 24 h); ` +
        'for a permanent key run: bulwark keys create --name <your-name> --role operator\n',
    );
  } catch (error) {
    bulwark.logger.warn({ err: error }, 'the one-time admin login link could not be prepared');
  }
}

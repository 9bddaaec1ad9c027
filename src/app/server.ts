import { isBulwarkError, type BulwarkError } from '../errors/index.js';
import { installShutdown } from '../runtime/shutdown.js';
import { installProcessErrorHandlers } from '../tracker/index.js';
import { buildApp } from './build.js';

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

/**
 * The demo app on the embedded defaults (`npm start` runs it under `bulwark supervise`). A
 * configuration error prints what is wrong (every bad field when there are several) and exits 78
 * before anything listens; other start failures exit 1.
 */
async function main(): Promise<void> {
  let app;
  try {
    app = await buildApp();
  } catch (error) {
    if (CONFIGURATION_ERRORS.some((code) => isBulwarkError(error, code))) {
      const { code, message, details } = error as BulwarkError;
      const problems = details ?? [];
      console.error(
        `bulwark: refusing to start, invalid configuration (${code}):${problems.length === 0 ? ` ${message}` : ''}`,
      );
      for (const problem of problems) console.error(`  ${problem.field}: ${problem.message}`);
      process.exit(78);
    } else if (isBulwarkError(error)) {
      console.error(`bulwark: refusing to start (${error.code}): ${error.message}`);
    } else {
      console.error('bulwark: failed to start:', error);
    }
    process.exit(1);
  }
  const { settings, logger } = app.bulwark;
  installShutdown(app, { timeoutMs: settings.shutdownTimeoutMs, logger });
  // An unhandled error is captured and written, then the process exits 1 for the supervisor to restart.
  installProcessErrorHandlers(app.bulwark.errors, { logger });
  await app.listen({ port: settings.port, host: settings.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : settings.port;
  const base = `http://${settings.host.includes(':') ? `[${settings.host}]` : settings.host}:${port}`;
  console.error(
    [
      `bulwark demo listening on ${base}`,
      `  health   ${base}/health`,
      `  metrics  ${base}/metrics`,
      `  API docs ${base}/api-docs`,
    ].join('\n'),
  );
}

await main();

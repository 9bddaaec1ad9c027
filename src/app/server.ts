import { isBulwarkError } from '../errors/index.js';
import { installShutdown } from '../runtime/shutdown.js';
import { installProcessErrorHandlers } from '../tracker/index.js';
import { buildApp } from './build.js';

/**
 * The demo app on the embedded defaults (`npm start` runs it under `bulwark supervise`). Invalid
 * settings print every bad variable and exit 78 (EX_CONFIG: a configuration error, which the
 * supervisor does not restart) before anything listens; other start failures exit 1.
 */
async function main(): Promise<void> {
  let app;
  try {
    app = await buildApp();
  } catch (error) {
    if (
      (isBulwarkError(error, 'BWK_ERR_SETTINGS_INVALID') || isBulwarkError(error, 'BWK_ERR_ALERTS_CONFIG')) &&
      error.details !== undefined
    ) {
      console.error(`bulwark: refusing to start, invalid configuration (${error.code}):`);
      for (const problem of error.details) console.error(`  ${problem.field}: ${problem.message}`);
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

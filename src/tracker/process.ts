import type { Logger } from 'pino';
import type { ErrorTracker } from './tracker.js';

/** Options of {@link installProcessErrorHandlers}. */
export interface ProcessErrorOptions {
  logger: Logger;
  /** Time given to writing the error (and sending it to Sentry) before exiting; default 2 000 ms. */
  flushTimeoutMs?: number;
  /** Replaced in tests; default `process.exit`. */
  exit?: (code: number) => void;
}

/**
 * Unhandled exceptions and promise rejections are captured (level `fatal`, `handled: false`),
 * logged, written to the store (and Sentry) within `flushTimeoutMs`, then the process exits 1: its
 * state is unknown, so it is left to the supervisor to restart it cleanly. Returns an uninstaller.
 */
export function installProcessErrorHandlers(tracker: ErrorTracker, opts: ProcessErrorOptions): () => void {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let exiting = false;
  const onFatal = (error: unknown, origin: string) => {
    if (exiting) return;
    exiting = true;
    tracker.capture(error, { level: 'fatal', handled: false, tags: { origin } });
    opts.logger.fatal({ err: error, origin }, `${origin}: exiting (the supervisor restarts the app)`);
    opts.logger.flush();
    const deadline = new Promise((resolve) => setTimeout(resolve, opts.flushTimeoutMs ?? 2_000).unref());
    void Promise.race([tracker.close(opts.flushTimeoutMs ?? 2_000), deadline])
      .catch(() => undefined)
      .finally(() => exit(1));
  };
  const onException = (error: Error) => onFatal(error, 'uncaughtException');
  const onRejection = (reason: unknown) => onFatal(reason, 'unhandledRejection');
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}

import type { Logger } from 'pino';

/** Something that can be closed gracefully, such as a Fastify app. */
export interface Closable {
  close(): Promise<unknown>;
}

/** Options of {@link installShutdown}. */
export interface ShutdownOptions {
  /** In-flight work must finish within this many ms, else the process exits 1. */
  timeoutMs: number;
  logger: Logger;
  /** Default SIGTERM and SIGINT. */
  signals?: NodeJS.Signals[];
  /** Replaced in tests; default `process.exit`. */
  exit?: (code: number) => void;
}

/**
 * Graceful shutdown on a signal: `target.close()` (for a Bulwark app: readiness fails, the server
 * stops accepting, in-flight requests finish, the store closes), then exit 0. Exits 1 when the
 * deadline passes or close fails, and at once on a second signal. Returns an uninstaller.
 */
export function installShutdown(target: Closable, opts: ShutdownOptions): () => void {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const signals = opts.signals ?? ['SIGTERM', 'SIGINT'];
  let stopping = false;

  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      opts.logger.error({ signal }, 'second signal while shutting down: exiting now');
      opts.logger.flush();
      exit(1);
      return;
    }
    stopping = true;
    opts.logger.info({ signal, timeoutMs: opts.timeoutMs }, 'shutting down');
    const deadline = setTimeout(() => {
      opts.logger.error(
        { timeoutMs: opts.timeoutMs },
        'shutdown deadline passed: exiting with in-flight work',
      );
      opts.logger.flush();
      exit(1);
    }, opts.timeoutMs);
    deadline.unref();
    target.close().then(
      () => {
        clearTimeout(deadline);
        opts.logger.info('shut down cleanly');
        opts.logger.flush();
        exit(0);
      },
      (error: unknown) => {
        clearTimeout(deadline);
        opts.logger.error({ err: error }, 'shutdown failed');
        opts.logger.flush();
        exit(1);
      },
    );
  };

  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}

import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../settings/index.js';
import { redactSecrets } from './redact.js';

export { CENSOR, SECRET_KEYS, redactSecrets } from './redact.js';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level: LogLevel;
  /** Where lines go; default stdout written asynchronously (flushed on close). */
  destination?: DestinationStream;
  /** Extra fields on every line, e.g. `{ service: 'spin' }`. */
  base?: Record<string, unknown>;
}

/**
 * The Bulwark logger: pino JSON lines, ISO timestamps, and every property named like a secret
 * (authorization, cookie, password, token, API key, ...; see `SECRET_KEYS`) logged as `[redacted]`.
 * The default destination writes asynchronously so logging stays off the request path; call
 * `logger.flush()` before exiting (Bulwark's `close()` does).
 */
export function createLogger(opts: LoggerOptions): Logger {
  const destination = opts.destination ?? pino.destination({ dest: 1, sync: false });
  return pino(
    {
      level: opts.level,
      base: { pid: process.pid, ...opts.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: (object) => redactSecrets(object) },
    },
    destination,
  );
}

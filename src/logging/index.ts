import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../settings/index.js';
import { redactSecrets } from './redact.js';
import { BatchingDestination, enableRequestLines } from './request-line.js';

export { CENSOR, SECRET_KEYS, redactSecrets } from './redact.js';
export { BatchingDestination, writeRequestLine } from './request-line.js';
export { lazyChildLoggerFactory } from './lazy-child.js';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level: LogLevel;
  /** Where lines go; default stdout (request lines batched, flushed every 200 ms and at exit). */
  destination?: DestinationStream;
  /** Extra fields on every line, e.g. `{ service: 'spin' }`. */
  base?: Record<string, unknown>;
}

/**
 * The Bulwark logger: pino JSON lines, ISO timestamps, and every property named like a secret
 * (authorization, cookie, password, token, API key, ...; see `SECRET_KEYS`) logged as `[redacted]`.
 * The default destination is stdout with request lines batched (see `bufferedStdout`).
 */
export function createLogger(opts: LoggerOptions): Logger {
  const destination = opts.destination ?? bufferedStdout();
  const base = { pid: process.pid, ...opts.base };
  const logger = pino(
    {
      level: opts.level,
      base,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: (object) => redactSecrets(object) },
    },
    destination,
  );
  enableRequestLines(logger, destination, base);
  return logger;
}

let stdout: BatchingDestination | undefined;

/**
 * Stdout: pino lines are written at once (synchronously, like pino's default), request lines are
 * batched into chunks of ~8 KiB, which measured several µs cheaper per request than a write per line
 * (`npm run bench:logging`). A request line waits at most 200 ms for its chunk; pending lines are
 * written when the process exits. Shared by every logger of the process.
 */
function bufferedStdout(): BatchingDestination {
  if (stdout !== undefined) return stdout;
  const sink = new BatchingDestination(pino.destination({ dest: 1, sync: true }));
  setInterval(() => sink.flushPending(), 200).unref();
  process.once('exit', () => {
    try {
      sink.flushPending();
    } catch {
      // stdout already closed: nothing left to save.
    }
  });
  stdout = sink;
  return sink;
}

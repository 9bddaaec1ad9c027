import type { DestinationStream, Logger } from 'pino';

/**
 * Collects request lines into chunks before handing them to the real destination; any other write
 * (a pino line) first flushes what is pending, so lines stay in order.
 */
export class BatchingDestination implements DestinationStream {
  readonly #target: DestinationStream;
  readonly #chunkSize: number;
  #pending = '';

  constructor(target: DestinationStream, chunkSize = 8192) {
    this.#target = target;
    this.#chunkSize = chunkSize;
  }

  /** A pino line: written after whatever is pending. */
  write(line: string): void {
    if (this.#pending !== '') this.flushPending();
    this.#target.write(line);
  }

  /** A request line: batched. */
  append(line: string): void {
    this.#pending += line;
    if (this.#pending.length >= this.#chunkSize) this.flushPending();
  }

  /** Hands pending lines to the target, then flushes it (pino's `logger.flush()` calls this). */
  flush(): void {
    this.flushPending();
    (this.#target as { flush?: () => void }).flush?.();
  }

  /** Hands pending lines to the target. */
  flushPending(): void {
    if (this.#pending === '') return;
    const chunk = this.#pending;
    this.#pending = '';
    this.#target.write(chunk);
  }
}

/** How the fast path writes for one logger. */
interface LineWriter {
  /** Appends a finished line. */
  append(line: string): void;
  /** `"pid":1,"service":"x"`: the logger's base bindings, serialised once. */
  bindings: string;
}

const writers = new WeakMap<Logger, LineWriter>();
const quoted = new Map<string, string>();
let lastMs = 0;
let lastIso = '';

/**
 * Registers the fast path for {@link writeRequestLine}: `createLogger` does this for the loggers it
 * makes, whose line format it knows. Other loggers (brought by the user) go through pino as usual.
 */
export function enableRequestLines(
  logger: Logger,
  destination: DestinationStream | BatchingDestination,
  base: Record<string, unknown>,
): void {
  const append =
    destination instanceof BatchingDestination
      ? (line: string) => destination.append(line)
      : (line: string) => destination.write(line);
  writers.set(logger, { append, bindings: JSON.stringify(base).slice(1, -1) });
}

/**
 * Writes the one `info` line per answered request: the line pino would write for
 * `logger.info({ reqId, method, route, statusCode, durationMs }, 'request')`, without pino's
 * per-call serialisation, which costs several µs on a path whose whole budget is a few µs (see
 * docs/benchmarks.md). Returns false when the logger has no fast path; the caller then logs through
 * pino. Only values Bulwark produces (and the validated request id) are written, so no redaction
 * applies.
 */
export function writeRequestLine(
  logger: Logger,
  reqId: string,
  method: string,
  route: string,
  statusCode: number,
  durationMs: number,
): boolean {
  const writer = writers.get(logger);
  if (writer === undefined) return false;
  if (!logger.isLevelEnabled('info')) return true;
  writer.append(
    `{"level":"info","time":"${isoNow()}",${writer.bindings},"reqId":${JSON.stringify(reqId)},` +
      `"method":${quote(method)},"route":${quote(route)},"statusCode":${statusCode},"durationMs":${durationMs},"msg":"request"}\n`,
  );
  return true;
}

/** The current time as ISO-8601, formatted once per millisecond. */
function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}

/** JSON string literal of a bounded-cardinality value (methods, route templates), cached. */
function quote(value: string): string {
  let literal = quoted.get(value);
  if (literal === undefined) {
    literal = JSON.stringify(value);
    if (quoted.size < 10_000) quoted.set(value, literal);
  }
  return literal;
}

import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, LevelWithSilentOrString } from 'pino';

type AnyLogFn = (...args: unknown[]) => void;
type Method = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** Calls a pino log method with its own logger as `this`, whatever overload the arguments match. */
function forward(logger: FastifyBaseLogger, method: Method, args: unknown[]): void {
  const fn: AnyLogFn = logger[method];
  fn.apply(logger, args);
}

/**
 * A request logger that creates its pino child (with the request id binding) only when something
 * actually logs through it. Most requests never do, and pino's `child()` costs about a microsecond,
 * which matters on the request path. Used as Fastify's `childLoggerFactory`.
 */
class LazyChildLogger {
  readonly #parent: FastifyBaseLogger;
  readonly #bindings: Bindings;
  readonly #options: ChildLoggerOptions | undefined;
  #real: FastifyBaseLogger | undefined;

  constructor(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions | undefined) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  #child(): FastifyBaseLogger {
    this.#real ??= this.#parent.child(this.#bindings, this.#options);
    return this.#real;
  }

  get level(): LevelWithSilentOrString {
    return this.#real?.level ?? this.#parent.level;
  }
  set level(level: LevelWithSilentOrString) {
    this.#child().level = level;
  }

  fatal(...args: unknown[]): void {
    forward(this.#child(), 'fatal', args);
  }
  error(...args: unknown[]): void {
    forward(this.#child(), 'error', args);
  }
  warn(...args: unknown[]): void {
    forward(this.#child(), 'warn', args);
  }
  info(...args: unknown[]): void {
    forward(this.#child(), 'info', args);
  }
  debug(...args: unknown[]): void {
    forward(this.#child(), 'debug', args);
  }
  trace(...args: unknown[]): void {
    forward(this.#child(), 'trace', args);
  }
  silent(...args: unknown[]): void {
    forward(this.#child(), 'silent', args);
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#child().child(bindings, options);
  }
}

/** Fastify `childLoggerFactory` returning {@link LazyChildLogger}s. */
export function lazyChildLoggerFactory(
  logger: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildLoggerOptions,
): FastifyBaseLogger {
  return new LazyChildLogger(logger, bindings, options);
}

import { catalogue, type ErrorCode } from './catalogue.js';

export { catalogue, type ErrorCode } from './catalogue.js';

/** One problem with one named field (an environment variable, a body property, a CLI option). */
export interface FieldProblem {
  /** The field as the user wrote it: `PORT`, `body.name`, `--to`. */
  field: string;
  message: string;
}

/** Extra data an error may carry; all of it is safe to show to the caller. */
export interface ErrorExtras {
  cause?: unknown;
  /** Per-field problems, e.g. every invalid environment variable at once. */
  details?: FieldProblem[];
}

const BRAND = Symbol.for('bulwark.error');

/**
 * An error from the catalogue. Recognise it with {@link isBulwarkError} and its `code`, never with
 * `instanceof` (two copies of the package would each have their own class).
 */
export class BulwarkError extends Error {
  readonly code: ErrorCode;
  /** HTTP status the error maps to when it reaches a client. */
  readonly statusCode: number;
  readonly params: Readonly<Record<string, unknown>>;
  readonly details: FieldProblem[] | undefined;

  constructor(code: ErrorCode, params: Record<string, unknown> = {}, extras: ErrorExtras = {}) {
    const entry = catalogue[code];
    super(
      formatMessage(entry.message, params),
      extras.cause === undefined ? undefined : { cause: extras.cause },
    );
    this.name = 'BulwarkError';
    this.code = code;
    this.statusCode = entry.status;
    this.params = params;
    this.details = extras.details;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** Creates a catalogue error; `params` fill the message template. */
export function bulwarkError(
  code: ErrorCode,
  params: Record<string, unknown> = {},
  extras: ErrorExtras = {},
): BulwarkError {
  return new BulwarkError(code, params, extras);
}

/** True for a Bulwark catalogue error, optionally of one code, from any copy of the package. */
export function isBulwarkError(error: unknown, code?: ErrorCode): error is BulwarkError {
  if (typeof error !== 'object' || error === null || !(BRAND in error)) return false;
  return code === undefined || (error as { code?: unknown }).code === code;
}

/**
 * An app's own coded error, outside Bulwark's catalogue (`SPIN_ALREADY_VOTED`, say): answered by the
 * Bulwark Fastify plugin exactly as a catalogue error is — its status and the body
 * `{ error: { code, message, requestId, details? } }` — so an app's clients meet one error shape.
 * Create it with {@link appError}; the app keeps its own list of codes (and documents them).
 */
export class AppError extends Error {
  readonly code: string;
  readonly statusCode: number;
  readonly params: Readonly<Record<string, unknown>> = {};
  readonly details: FieldProblem[] | undefined;

  constructor(code: string, status: number, message: string, extras: ErrorExtras = {}) {
    if (!/^[A-Z][A-Z0-9_]{2,63}$/.test(code))
      throw new TypeError(
        `an app error code is UPPER_SNAKE_CASE, 3–64 characters: got ${JSON.stringify(code)}`,
      );
    if (!Number.isInteger(status) || status < 400 || status > 599)
      throw new TypeError(`an app error status is an HTTP error status (400–599): got ${status}`);
    super(message, extras.cause === undefined ? undefined : { cause: extras.cause });
    this.name = 'AppError';
    this.code = code;
    this.statusCode = status;
    this.details = extras.details;
    // Answered like a catalogue error (the plugin's error handler recognises the brand).
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** An app's own coded error with the HTTP status it is answered with (see {@link AppError}). */
export function appError(code: string, status: number, message: string, extras: ErrorExtras = {}): AppError {
  return new AppError(code, status, message, extras);
}

/** True for an {@link AppError}, optionally of one code. */
export function isAppError(error: unknown, code?: string): error is AppError {
  if (!isBulwarkError(error)) return false;
  const own = (error as { code: string }).code;
  return !(own in catalogue) && (code === undefined || own === code);
}

/**
 * The body of every HTTP error answer, from the app and from the supervisor's proxy alike:
 * `{ error: { code, message, requestId } }`.
 */
export interface ErrorBody {
  error: {
    code: string;
    message: string;
    requestId: string;
    /** Per-field problems of a validation error. */
    details?: FieldProblem[];
    /** Only when `NODE_ENV=development`. */
    stack?: string;
  };
}

/** The answer body of a catalogue error, with its per-field details when it has some. */
export function errorBody(error: BulwarkError, requestId: string): ErrorBody {
  const body: ErrorBody = { error: { code: error.code, message: error.message, requestId } };
  if (error.details !== undefined) body.error.details = error.details;
  return body;
}

function formatMessage(template: string, params: Record<string, unknown>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole,
  );
}

import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { bulwarkError, isBulwarkError, type BulwarkError, type FieldProblem } from '../errors/index.js';
import { failures } from './request-observer.js';

/** The body of every error response. */
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

interface ValidationIssue {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/**
 * Maps any error reaching Fastify to a catalogue error. Fastify's own client errors (validation,
 * unparseable or oversized bodies, unsupported media types) become their Bulwark codes; other
 * client errors keep their 4xx status as `BWK_ERR_HTTP_BAD_REQUEST`; everything else is a 500 whose
 * message reveals nothing.
 */
export function toHttpError(
  error: unknown,
  request?: FastifyRequest,
): { error: BulwarkError; status: number } {
  if (isBulwarkError(error)) return { error, status: error.statusCode };
  const fastifyError = error as Partial<FastifyError> & { validation?: ValidationIssue[] };
  if (Array.isArray(fastifyError.validation)) {
    const part = fastifyError.validationContext ?? 'body';
    const details = fastifyError.validation.map((issue) => describeIssue(part, issue));
    const detail = details.map((d) => `${d.field} ${d.message}`).join('; ');
    return {
      error: bulwarkError('BWK_ERR_HTTP_VALIDATION', { part, detail }, { cause: error, details }),
      status: 400,
    };
  }
  const status = fastifyError.statusCode ?? 500;
  switch (fastifyError.code ?? '') {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return {
        error: bulwarkError('BWK_ERR_HTTP_BAD_BODY', { detail: fastifyError.message }, { cause: error }),
        status: 400,
      };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        error: bulwarkError(
          'BWK_ERR_HTTP_BODY_TOO_LARGE',
          { limit: request?.routeOptions.bodyLimit ?? 'configured' },
          { cause: error },
        ),
        status: 413,
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        error: bulwarkError(
          'BWK_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE',
          { contentType: JSON.stringify(request?.headers['content-type'] ?? '') },
          { cause: error },
        ),
        status: 415,
      };
    default:
      break;
  }
  if (error instanceof SyntaxError && status === 400) {
    return {
      error: bulwarkError('BWK_ERR_HTTP_BAD_BODY', { detail: error.message }, { cause: error }),
      status: 400,
    };
  }
  if (status >= 400 && status < 500) {
    return {
      error: bulwarkError('BWK_ERR_HTTP_BAD_REQUEST', { detail: fastifyError.message }, { cause: error }),
      status,
    };
  }
  return {
    error: bulwarkError('BWK_ERR_HTTP_INTERNAL', {}, { cause: error }),
    status: status >= 500 ? status : 500,
  };
}

function describeIssue(part: string, issue: ValidationIssue): FieldProblem {
  const path = (issue.instancePath ?? '').split('/').filter(Boolean);
  const missing = issue.params?.['missingProperty'] ?? issue.params?.['requiredProperty'];
  const extra = issue.params?.['additionalProperty'];
  if (typeof missing === 'string') path.push(missing);
  else if (typeof extra === 'string') path.push(extra);
  return { field: [part, ...path].join('.'), message: issue.message ?? 'is invalid' };
}

/**
 * Builds the Fastify error handler; `development` adds stack traces to 5xx bodies; `onServerError`
 * sees every error that becomes a 5xx (error tracking).
 */
export function errorHandler(
  development: boolean,
  onServerError?: (raw: unknown, request: FastifyRequest, status: number) => void,
) {
  return function handleError(
    this: unknown,
    raw: unknown,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const { error, status } = toHttpError(raw, request);
    // The request's one log line (written when the response ends) carries the error.
    if (status >= 500) {
      failures.set(request, raw);
      onServerError?.(raw, request, status);
    }
    const body: ErrorBody = { error: { code: error.code, message: error.message, requestId: request.id } };
    if (error.details !== undefined) body.error.details = error.details;
    if (development && status >= 500 && raw instanceof Error && raw.stack !== undefined) {
      body.error.message = `${error.message}: ${raw.message}`;
      body.error.stack = raw.stack;
    }
    void reply.code(status).send(body);
  };
}

/** Answers unmatched routes with `BWK_ERR_HTTP_NOT_FOUND`. */
export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): void {
  const path = request.url.split('?')[0] ?? '/';
  const error = bulwarkError('BWK_ERR_HTTP_NOT_FOUND', { method: request.method, url: path });
  const body: ErrorBody = { error: { code: error.code, message: error.message, requestId: request.id } };
  void reply.code(404).send(body);
}

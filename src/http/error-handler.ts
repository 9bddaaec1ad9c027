import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import {
  bulwarkError,
  errorBody,
  isBulwarkError,
  type BulwarkError,
  type FieldProblem,
} from '../errors/index.js';
import { failures } from './request-observer.js';

interface ValidationIssue {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/**
 * Maps any error reaching Fastify to a catalogue error. Catalogue errors pass as they are. Fastify's
 * own client errors (validation, unparseable or oversized bodies, unsupported media types) become
 * their Bulwark codes; its other `FST_*` 4xx keep their message as `BWK_ERR_HTTP_BAD_REQUEST`. Any
 * other error with a 4xx status keeps the status as `BWK_ERR_HTTP_BAD_REQUEST` with only the status's
 * reason phrase (`hidden`: its own message was withheld); everything else is a 500 whose message
 * reveals nothing.
 */
export function toHttpError(
  error: unknown,
  request?: FastifyRequest,
): { error: BulwarkError; status: number; hidden?: boolean } {
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
    // Only Fastify's own messages describe the request; any other library's or the app's may
    // describe the server (paths, queries, names), so the client gets the status's reason only.
    const own = typeof fastifyError.code === 'string' && fastifyError.code.startsWith('FST_');
    const detail = own ? fastifyError.message : `${status} ${STATUS_CODES[status] ?? 'Client Error'}`;
    return {
      error: bulwarkError('BWK_ERR_HTTP_BAD_REQUEST', { detail }, { cause: error }),
      status,
      hidden: !own,
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
 * Builds the Fastify error handler; `development` adds the original message and the stack to 5xx
 * bodies, and the original message to the 4xx whose message is otherwise withheld; `onServerError`
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
    const { error, status, hidden } = toHttpError(raw, request);
    // The request's one log line (written when the response ends) carries the error whose message
    // the client did not get.
    if (status >= 500 || hidden === true) failures.set(request, raw);
    if (status >= 500) onServerError?.(raw, request, status);
    const body = errorBody(error, request.id);
    if (development && (status >= 500 || hidden === true) && raw instanceof Error) {
      body.error.message = `${error.message}: ${raw.message}`;
      if (status >= 500 && raw.stack !== undefined) body.error.stack = raw.stack;
    }
    void reply.code(status).send(body);
  };
}

/**
 * Fastify's `frameworkErrors`: errors raised before a route is found (a malformed URL, an over-long
 * parameter, a failed async constraint) answered in the same coded body instead of Fastify's own.
 * The request has no route yet, so nothing here may read its route options.
 */
export function frameworkErrorHandler(error: Error, request: FastifyRequest, reply: FastifyReply): void {
  const { error: coded, status } = toHttpError(error);
  void reply.code(status).send(errorBody(coded, request.id));
}

/** Answers unmatched routes with `BWK_ERR_HTTP_NOT_FOUND`. */
export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): void {
  const path = request.url.split('?')[0] ?? '/';
  const error = bulwarkError('BWK_ERR_HTTP_NOT_FOUND', { method: request.method, url: path });
  void reply.code(404).send(errorBody(error, request.id));
}

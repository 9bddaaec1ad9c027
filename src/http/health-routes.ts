import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Bulwark } from '../runtime/create.js';
import type { HealthReport } from '../health/index.js';
import type { ProtectableEndpoint } from '../settings/index.js';
import { endpointGuard } from './protect.js';

const CheckSchema = Type.Object(
  {
    status: Type.Enum(['pass', 'warn', 'fail']),
    componentType: Type.Optional(Type.String()),
    observedValue: Type.Optional(Type.Union([Type.Number(), Type.String(), Type.Boolean()])),
    observedUnit: Type.Optional(Type.String()),
    output: Type.Optional(Type.String()),
    time: Type.String({ format: 'date-time' }),
    durationMs: Type.Optional(Type.Number()),
  },
  { additionalProperties: true },
);

/** The `application/health+json` body of draft-inadarei-api-health-check. */
const HealthSchema = Type.Object(
  {
    status: Type.Enum(['pass', 'warn', 'fail']),
    version: Type.Optional(Type.String()),
    releaseId: Type.Optional(Type.String()),
    serviceId: Type.Optional(Type.String()),
    description: Type.Optional(Type.String()),
    output: Type.Optional(Type.String()),
    checks: Type.Optional(Type.Record(Type.String(), Type.Array(CheckSchema))),
  },
  { additionalProperties: true },
);

const responses = { 200: HealthSchema, 503: HealthSchema };

/** OpenAPI: a protected monitoring route takes the admin key or the metrics token. */
const MONITORING_SECURITY: Record<string, string[]>[] = [{ adminKey: [] }, { metricsToken: [] }];

/**
 * `/health`, `/health/live`, `/health/ready` and `/metrics`; each behind a key when the settings
 * protect it (docs/operations.md#protecting-metrics-health-and-api-docs).
 */
export function registerObservabilityRoutes(app: FastifyInstance, bulwark: Bulwark): void {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  const guard = (endpoint: ProtectableEndpoint) => {
    const onRequest = endpointGuard(bulwark.settings, endpoint);
    return onRequest === undefined ? {} : { onRequest };
  };
  const security = (endpoint: ProtectableEndpoint): { security?: Record<string, string[]>[] } =>
    endpointGuard(bulwark.settings, endpoint) === undefined ? {} : { security: MONITORING_SECURITY };
  const send = (report: HealthReport) => ({
    code: report.status === 'fail' ? (503 as const) : (200 as const),
    report,
  });

  typed.get(
    '/health',
    {
      // Probes and scrapes must never be refused by the app's rate limits.
      config: { rateLimit: false },
      ...guard('health'),
      schema: {
        ...security('health'),
        tags: ['health'],
        summary: 'Every health check with its last result',
        description: 'Cached results: never waits on a dependency. 200 for pass/warn, 503 for fail.',
        response: responses,
      },
    },
    async (_request, reply) => {
      const { code, report } = send(bulwark.health.report());
      return reply.code(code).type('application/health+json').send(report);
    },
  );
  typed.get(
    '/health/live',
    {
      // Probes and scrapes must never be refused by the app's rate limits.
      config: { rateLimit: false },
      ...guard('health/live'),
      schema: {
        ...security('health/live'),
        tags: ['health'],
        summary: 'Liveness: the process and its event loop answer',
        description: 'Depends on nothing external.',
        response: responses,
      },
    },
    async (_request, reply) => reply.type('application/health+json').send(bulwark.health.liveness()),
  );
  typed.get(
    '/health/ready',
    {
      // Probes and scrapes must never be refused by the app's rate limits.
      config: { rateLimit: false },
      ...guard('health/ready'),
      schema: {
        ...security('health/ready'),
        tags: ['health'],
        summary: 'Readiness: fail while starting, stopping, or while a required dependency fails',
        response: responses,
      },
    },
    async (_request, reply) => {
      const { code, report } = send(bulwark.health.readiness());
      return reply.code(code).type('application/health+json').send(report);
    },
  );
  typed.get(
    '/metrics',
    {
      // Probes and scrapes must never be refused by the app's rate limits.
      config: { rateLimit: false },
      ...guard('metrics'),
      schema: {
        ...security('metrics'),
        tags: ['metrics'],
        summary: 'Prometheus metrics (text exposition format)',
        produces: ['text/plain'],
        response: { 200: Type.String() },
      },
    },
    async (_request, reply) => reply.type(bulwark.metrics.contentType).send(await bulwark.metrics.render()),
  );
}

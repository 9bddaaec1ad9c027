import type { FastifyInstance, FastifySchemaValidationError } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { bulwarkError } from '../errors/index.js';
import type { MetricsHistory } from '../metrics/history.js';

const security = [{ adminKey: [] }];
/** Default range of a history query without `from`: the hour before `to`. */
const DEFAULT_RANGE_MS = 3_600_000;

const Point = Type.Object({
  at: Type.Integer({ description: 'bucket start, ms since the epoch' }),
  count: Type.Integer({ description: 'samples in the bucket' }),
  avg: Type.Number(),
  min: Type.Number(),
  max: Type.Number(),
  last: Type.Number({ description: 'the newest sample in the bucket' }),
});

/**
 * Answers a query string that fails its schema with `BWK_ERR_METRICS_QUERY_INVALID` naming the field
 * (`from`, `to`, `resolution`, `series`, `prefix`), rather than the generic validation error.
 */
function queryError(errors: FastifySchemaValidationError[]): Error {
  const details = errors.map((issue) => {
    const missing = issue.params['missingProperty'];
    const field =
      typeof missing === 'string' ? missing : issue.instancePath.split('/').filter(Boolean).join('.');
    return { field: field === '' ? 'querystring' : field, message: issue.message ?? 'is invalid' };
  });
  const detail = details.map((d) => `${d.field} ${d.message}`).join('; ');
  return bulwarkError('BWK_ERR_METRICS_QUERY_INVALID', { detail }, { details });
}

/**
 * The metrics history routes of the admin API: `GET /metrics/series?prefix=` lists the stored series
 * names, `GET /metrics/history?series=&from=&to=&resolution=` reads one series (`from`/`to` in ms
 * since the epoch, default the last hour; `resolution` in seconds, default the finest tier covering
 * `from`). Register them inside the authenticated, audited admin scope: they check no key themselves.
 * Bad input answers 400 `BWK_ERR_METRICS_QUERY_INVALID` naming the field.
 */
export function registerMetricsHistoryRoutes(admin: FastifyInstance, history: MetricsHistory): void {
  const typed = admin.withTypeProvider<TypeBoxTypeProvider>();
  const schemaErrorFormatter = queryError;

  typed.get(
    '/metrics/series',
    {
      schema: {
        tags: ['admin'],
        summary: 'Names of the series in the metrics history, optionally those starting with a prefix',
        security,
        querystring: Type.Object({ prefix: Type.Optional(Type.String({ maxLength: 500 })) }),
        response: { 200: Type.Object({ series: Type.Array(Type.String()) }) },
      },
      schemaErrorFormatter,
    },
    async (request) => ({ series: await history.seriesNames(request.query.prefix ?? '') }),
  );

  typed.get(
    '/metrics/history',
    {
      schema: {
        tags: ['admin'],
        summary: 'Points of one metrics history series over a time range',
        security,
        querystring: Type.Object({
          series: Type.String({ minLength: 1, maxLength: 1000, description: 'exact series name' }),
          from: Type.Optional(
            Type.Integer({ minimum: 0, description: 'ms since the epoch; default to - 1 h' }),
          ),
          to: Type.Optional(Type.Integer({ minimum: 0, description: 'ms since the epoch; default now' })),
          maxPoints: Type.Optional(
            Type.Integer({
              minimum: 2,
              maximum: 1000,
              default: 200,
              description: 'at most this many points: finer buckets are merged into coarser ones',
            }),
          ),
          resolution: Type.Optional(
            Type.Integer({
              minimum: 1,
              description: "seconds, one of the tiers'; default the finest covering from",
            }),
          ),
        }),
        response: {
          200: Type.Object({ series: Type.String(), resolutionS: Type.Integer(), points: Type.Array(Point) }),
        },
      },
      schemaErrorFormatter,
    },
    async (request) => {
      const { series, resolution, maxPoints = 200 } = request.query;
      const to = request.query.to ?? history.now();
      const from = request.query.from ?? Math.max(0, to - DEFAULT_RANGE_MS);
      return { series, ...(await history.query(series, from, to, resolution, maxPoints)) };
    },
  );
}

import Type from 'typebox';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The endpoints `BULWARK_PROTECT_ENDPOINTS` can put behind a key. */
export const PROTECTABLE_ENDPOINTS = [
  'metrics',
  'api-docs',
  'health',
  'health/live',
  'health/ready',
] as const;
const ENDPOINT = `\\s*(${PROTECTABLE_ENDPOINTS.join('|')})\\s*`;

/**
 * Every setting Bulwark reads, keyed by its environment variable. One schema validates both the
 * environment and the options passed to `createBulwark()`; `option` is the options property that
 * overrides the variable, `hint` the message shown when the value is rejected.
 */
export const settingFields = {
  PORT: {
    option: 'port',
    schema: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
    hint: 'must be an integer port from 0 to 65535',
    example: '3000',
    doc: 'TCP port the HTTP server listens on.',
  },
  HOST: {
    option: 'host',
    schema: Type.String({ minLength: 1, pattern: '^[^\\s/]+$', default: '127.0.0.1' }),
    hint: 'must be a host name or IP address without spaces or slashes',
    example: '0.0.0.0',
    doc: 'Interface the HTTP server binds to.',
  },
  LOG_LEVEL: {
    option: 'logLevel',
    schema: Type.Enum(LOG_LEVELS, { default: 'info' }),
    hint: `must be one of ${LOG_LEVELS.join(', ')}`,
    example: 'debug',
    doc: 'pino log level.',
  },
  BULWARK_DATA_DIR: {
    option: 'dataDir',
    schema: Type.String({ minLength: 1, default: './data' }),
    hint: 'must be a non-empty directory path',
    example: '/var/lib/bulwark',
    doc: 'Directory for embedded state (the SQLite store `bulwark.sqlite`).',
  },
  DATABASE_URL: {
    option: 'databaseUrl',
    schema: Type.Optional(Type.String({ pattern: '^postgres(ql)?://[^\\s]+$' })),
    hint: 'must be a postgres:// or postgresql:// connection URL',
    example: 'postgres://app:secret@db:5432/app',
    doc: 'PostgreSQL store. Unset: SQLite at `<BULWARK_DATA_DIR>/bulwark.sqlite`.',
  },
  BULWARK_STORE_QUERY_TIMEOUT_MS: {
    option: 'storeQueryTimeoutMs',
    schema: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 30_000 }),
    hint: 'must be an integer number of milliseconds from 100 to 3600000',
    example: '30000',
    doc: 'PostgreSQL store: a query with no answer within this long fails with BWK_ERR_STORE_UNAVAILABLE and its connection is closed. Migrations are not bounded.',
  },
  REDIS_URL: {
    option: 'redisUrl',
    schema: Type.Optional(Type.String({ pattern: '^rediss?://[^\\s]+$' })),
    hint: 'must be a redis:// or rediss:// URL',
    example: 'redis://127.0.0.1:6379',
    doc: 'Redis for cache, rate limits, queues and pub/sub. Unset: embedded parts.',
  },
  SENTRY_DSN: {
    option: 'sentryDsn',
    schema: Type.Optional(Type.String({ pattern: '^https?://[^\\s@/]+@[^\\s]+/\\w+$' })),
    hint: 'must be a Sentry DSN such as https://<key>@<host>/<project>',
    secret: true,
    example: 'https://abc123@o1.ingest.sentry.io/42',
    doc: 'Forward captured errors to Sentry as well. Unset: errors stay local.',
  },
  BULWARK_ADMIN_KEY: {
    option: 'adminKey',
    schema: Type.Optional(Type.String({ minLength: 16, pattern: '^\\S+$' })),
    hint: 'must be at least 16 characters without spaces',
    secret: true,
    example: '(a long random string)',
    doc: 'Bearer key for the admin console and `/admin/api/`. Unset: admin endpoints refuse everything.',
  },
  BULWARK_PROTECT_ENDPOINTS: {
    option: 'protectEndpoints',
    schema: Type.Optional(Type.String({ pattern: `^${ENDPOINT}(,${ENDPOINT})*$` })),
    hint: `must be a comma-separated list of ${PROTECTABLE_ENDPOINTS.join(', ')}`,
    example: 'metrics,api-docs,health',
    doc: 'Endpoints that answer only with Authorization: Bearer <BULWARK_ADMIN_KEY> (or <BULWARK_METRICS_TOKEN>, except api-docs). Unset: all open.',
  },
  BULWARK_METRICS_TOKEN: {
    option: 'metricsToken',
    schema: Type.Optional(Type.String({ minLength: 16, pattern: '^\\S+$' })),
    hint: 'must be at least 16 characters without spaces',
    secret: true,
    example: '(a long random string)',
    doc: 'Bearer token for scrapers: opens /metrics and the protected /health routes, nothing else. Setting it protects /metrics.',
  },
  BULWARK_FLAGS_FILE: {
    option: 'flagsFile',
    schema: Type.Optional(Type.String({ minLength: 1 })),
    hint: 'must be a file path',
    example: './flags.json',
    doc: 'JSON file of feature flag definitions that seeds an empty store on first start.',
  },
  BULWARK_ALERTS_FILE: {
    option: 'alertsFile',
    schema: Type.Optional(Type.String({ minLength: 1 })),
    hint: 'must be a file path',
    example: './alerts.json',
    doc: 'JSON file of alert rules, receivers and routes (docs/alerting.md). Unset: no alerting.',
  },
  BULWARK_SHUTDOWN_TIMEOUT_MS: {
    option: 'shutdownTimeoutMs',
    schema: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000 }),
    hint: 'must be an integer number of milliseconds from 100 to 600000',
    example: '10000',
    doc: 'Deadline for in-flight requests to finish after SIGTERM/SIGINT before the process exits 1.',
  },
  BULWARK_HEADERS_TIMEOUT_MS: {
    option: 'headersTimeoutMs',
    schema: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000 }),
    hint: 'must be an integer number of milliseconds from 100 to 600000, at most BULWARK_REQUEST_TIMEOUT_MS',
    example: '10000',
    doc: 'Time a client has to send the request headers (from the connection or the request start); then 408 and close.',
  },
  BULWARK_REQUEST_TIMEOUT_MS: {
    option: 'requestTimeoutMs',
    schema: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 30_000 }),
    hint: 'must be an integer number of milliseconds from 100 to 3600000',
    example: '30000',
    doc: 'Time a client has to send a whole request, headers and body; then 408 and close. Responses are not bounded by it.',
  },
  BULWARK_KEEPALIVE_TIMEOUT_MS: {
    option: 'keepAliveTimeoutMs',
    schema: Type.Integer({ minimum: 100, maximum: 600_000, default: 72_000 }),
    hint: 'must be an integer number of milliseconds from 100 to 600000',
    example: '72000',
    doc: 'How long an idle keep-alive connection is kept open after a response, waiting for the next request.',
  },
  BULWARK_IDLE_TIMEOUT_MS: {
    option: 'idleTimeoutMs',
    schema: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 120_000 }),
    hint: 'must be an integer number of milliseconds from 1000 to 3600000',
    example: '120000',
    doc: 'A connection with no data in either direction for this long is closed (Fastify connectionTimeout).',
  },
  BULWARK_MAX_CONNECTIONS: {
    option: 'maxConnections',
    schema: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10_000 }),
    hint: 'must be an integer from 1 to 1000000',
    example: '10000',
    doc: 'Open connections the server accepts at once; further ones are closed as soon as they are accepted.',
  },
  BULWARK_MAX_REQUESTS_PER_SOCKET: {
    option: 'maxRequestsPerSocket',
    schema: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
    hint: 'must be an integer from 0 (no limit) to 1000000',
    example: '1000',
    doc: 'Requests served on one keep-alive connection before it is closed (Connection: close); 0 (default): no limit.',
  },
  BULWARK_BODY_LIMIT_BYTES: {
    option: 'bodyLimitBytes',
    schema: Type.Integer({ minimum: 1, maximum: 1_073_741_824, default: 1_048_576 }),
    hint: 'must be an integer number of bytes from 1 to 1073741824',
    example: '1048576',
    doc: 'Largest request body accepted by routes without their own bodyLimit; larger ones get 413.',
  },
  NODE_ENV: {
    option: 'nodeEnv',
    schema: Type.String({ minLength: 1, pattern: '^\\S+$', default: 'production' }),
    hint: 'must be a single word such as production, staging or development',
    example: 'development',
    doc: 'Only `development` changes anything: it adds stack traces to 5xx error responses.',
  },
} as const;

export type SettingName = keyof typeof settingFields;

export const settingsSchema = Type.Object(
  Object.fromEntries(Object.entries(settingFields).map(([name, field]) => [name, field.schema])) as {
    [K in SettingName]: (typeof settingFields)[K]['schema'];
  },
);

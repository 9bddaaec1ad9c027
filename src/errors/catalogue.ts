/**
 * The one catalogue of every error Bulwark throws or answers with.
 *
 * Codes are stable and never reused: a removed error keeps its line, commented as retired.
 * `status` is the HTTP status the error maps to when it reaches a client; `message` is a template
 * whose `{name}` placeholders are filled from the error's params. `docs/errors.md` lists every
 * code and a test keeps the two in step.
 */
export const catalogue = {
  BWK_ERR_SETTINGS_INVALID: {
    status: 500,
    message: 'Invalid settings: {summary}',
    area: 'settings',
  },
  BWK_ERR_HTTP_NOT_FOUND: {
    status: 404,
    message: 'Route {method} {url} not found',
    area: 'http',
  },
  BWK_ERR_HTTP_PAGES_NOT_BUILT: {
    status: 503,
    message: 'The pages under {base} were not built: run `npm run build` (npm install runs it)',
    area: 'http',
  },
  BWK_ERR_HTTP_VALIDATION: {
    status: 400,
    message: 'Invalid request {part}: {detail}',
    area: 'http',
  },
  BWK_ERR_HTTP_BAD_BODY: {
    status: 400,
    message: 'The request body could not be parsed: {detail}',
    area: 'http',
  },
  BWK_ERR_HTTP_BODY_TOO_LARGE: {
    status: 413,
    message: 'The request body is larger than the {limit} bytes allowed',
    area: 'http',
  },
  BWK_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: 'Unsupported content type: {contentType}',
    area: 'http',
  },
  BWK_ERR_HTTP_BAD_REQUEST: {
    status: 400,
    message: 'Bad request: {detail}',
    area: 'http',
  },
  BWK_ERR_HTTP_INTERNAL: {
    status: 500,
    message: 'Internal server error',
    area: 'http',
  },
  BWK_ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    message:
      'The request was not received in time (headers within {headersTimeoutMs} ms, the whole request within {requestTimeoutMs} ms)',
    area: 'http',
  },
  BWK_ERR_HTTP_HEADERS_TOO_LARGE: {
    status: 431,
    message: 'The request headers are larger than the {limit} bytes allowed',
    area: 'http',
  },
  BWK_ERR_HTTP_UNAUTHORIZED: {
    status: 401,
    message: 'A valid key is required for {endpoint} (Authorization: Bearer <{keys}>)',
    area: 'http',
  },
  BWK_ERR_STORE_UNAVAILABLE: {
    status: 503,
    message: 'The store ({engine}) is unavailable: {detail}',
    area: 'store',
  },
  BWK_ERR_STORE_MIGRATION_FAILED: {
    status: 500,
    message: 'Migration {migration} failed while migrating {direction}: {detail}',
    area: 'store',
  },
  BWK_ERR_STORE_CONFLICT: {
    status: 409,
    message: '{namespace}/{key} is at version {actual}, not the expected version {expected}',
    area: 'store',
  },
  BWK_ERR_STORE_VALUE_INVALID: {
    status: 500,
    message: 'The value for {namespace}/{key} cannot be stored as JSON: {detail}',
    area: 'store',
  },
  BWK_ERR_STORE_OPTIONS: {
    status: 500,
    message: 'Invalid store option {field}: {problem}',
    area: 'store',
  },
  BWK_ERR_HEALTH_CHECK_DUPLICATE: {
    status: 500,
    message: 'A health check named {name} is already registered',
    area: 'health',
  },
  BWK_ERR_HEALTH_CHECK_TIMEOUT: {
    status: 503,
    message: 'Health check {name} did not answer within {timeoutMs} ms',
    area: 'health',
  },
  BWK_ERR_FAILOVER_OPTIONS: {
    status: 500,
    message: 'Invalid failover options for {name}: {detail}',
    area: 'failover',
  },
  BWK_ERR_CACHE_OPTIONS: {
    status: 500,
    message: 'Invalid options for cache store {name}: {detail}',
    area: 'cache',
  },
  BWK_ERR_CACHE_VALUE_INVALID: {
    status: 500,
    message: 'The value for {key} cannot be cached as JSON by {store}: {detail}',
    area: 'cache',
  },
  BWK_ERR_RATELIMIT_EXCEEDED: {
    status: 429,
    message: 'Rate limit exceeded for policy {policy}: retry in {retryAfter} s',
    area: 'ratelimit',
  },
  BWK_ERR_RATELIMIT_OPTIONS: {
    status: 500,
    message: 'Invalid rate limiting options: {detail}',
    area: 'ratelimit',
  },
  BWK_ERR_PROTECTION_OVERLOADED: {
    status: 503,
    message: 'The service is overloaded and shed this {priority} request ({reason}): retry in {retryAfter} s',
    area: 'protection',
  },
  BWK_ERR_PROTECTION_CLIENT_SHARE: {
    status: 429,
    message:
      'The service is overloaded and this client already holds its share of it: this {priority} request was refused, retry in {retryAfter} s',
    area: 'protection',
  },
  BWK_ERR_PROTECTION_OPTIONS: {
    status: 500,
    message: 'Invalid load-shedding option {field}: {problem}',
    area: 'protection',
  },
  BWK_ERR_DEGRADATION_OPTIONS: {
    status: 500,
    message: 'Invalid degradation option {field}: {problem}',
    area: 'degradation',
  },
  BWK_ERR_QUEUE_OPTIONS: {
    status: 400,
    message: 'Invalid queue options: {detail}',
    area: 'queue',
  },
  BWK_ERR_QUEUE_DATA_INVALID: {
    status: 400,
    message: 'The data of a job for queue {queue} cannot be stored as JSON: {detail}',
    area: 'queue',
  },
  BWK_ERR_QUEUE_CLOSED: {
    status: 503,
    message: 'The queues are closed: cannot {operation}',
    area: 'queue',
  },
  BWK_ERR_QUEUE_JOB_TIMEOUT: {
    status: 500,
    message: 'Job {id} of queue {queue} ran longer than its {timeoutMs} ms timeout',
    area: 'queue',
  },
  BWK_ERR_QUEUE_JOB_NOT_FOUND: {
    status: 404,
    message: 'No {state} job {id} in queue {queue}',
    area: 'queue',
  },
  BWK_ERR_QUEUE_REDIS_UNAVAILABLE: {
    status: 503,
    message:
      'Cannot {operation} job {id} of queue {queue}: it is not in the store, and Redis (BullMQ) is down or did not answer within {deadlineMs} ms',
    area: 'queue',
  },
  BWK_ERR_FLAG_INVALID: {
    status: 400,
    message: 'Invalid flag {key}: {detail}',
    area: 'flag',
  },
  BWK_ERR_FLAG_NOT_FOUND: {
    status: 404,
    message: 'No flag {key}',
    area: 'flag',
  },
  BWK_ERR_FLAG_NO_GUARDED_ROLLOUT: {
    status: 409,
    message: 'Flag {key} has no running guarded rollout to {action}',
    area: 'flag',
  },
  BWK_ERR_ADMIN_UNAUTHORIZED: {
    status: 401,
    message: 'A valid admin key or console session is required (Authorization: Bearer <key>)',
    area: 'admin',
  },
  BWK_ERR_ADMIN_DISABLED: {
    status: 403,
    message: 'The admin API is disabled: no admin key is stored and BULWARK_ADMIN_KEY is not set',
    area: 'admin',
  },
  BWK_ERR_ADMIN_FORBIDDEN: {
    status: 403,
    message: 'The {role} role may not {method} {route}: only an operator may change things',
    area: 'admin',
  },
  BWK_ERR_ADMIN_CSRF: {
    status: 403,
    message:
      'Refused: a change made with the session cookie needs the Origin of this site and the X-CSRF-Token of the session',
    area: 'admin',
  },
  BWK_ERR_ADMIN_LOGIN_LIMITED: {
    status: 429,
    message: 'Too many login attempts from this network: retry in {retryAfter} s',
    area: 'admin',
  },
  BWK_ERR_ADMIN_CONSOLE_NOT_BUILT: {
    status: 503,
    message: 'The admin console was not built: run `npm run build` (npm install runs it)',
    area: 'admin',
  },
  BWK_ERR_ADMIN_NOT_SUPERVISED: {
    status: 409,
    message: 'This process does not run under `bulwark supervise`: there is nothing to reload',
    area: 'admin',
  },
  BWK_ERR_ADMIN_UNKNOWN_DEPENDENCY: {
    status: 404,
    message: 'No degradable dependency named {name} is configured',
    area: 'admin',
  },
  BWK_ERR_ADMIN_STREAMS_FULL: {
    status: 503,
    message: 'Too many live event streams are open on this instance (at most {max}); retry later',
    area: 'admin',
  },
  BWK_ERR_ACCESS_KEY_INVALID: {
    status: 400,
    message: 'Invalid admin key {detail}',
    area: 'access',
  },
  BWK_ERR_ACCESS_KEY_EXISTS: {
    status: 409,
    message: 'An admin key named {name} exists already (names are never reused, revoked keys included)',
    area: 'access',
  },
  BWK_ERR_ACCESS_KEY_NOT_FOUND: {
    status: 404,
    message: 'No admin key named {name}',
    area: 'access',
  },
  BWK_ERR_CONFIG_PARSE: {
    status: 400,
    message: 'Cannot parse {location}: {detail}',
    area: 'config',
  },
  BWK_ERR_CONFIG_INVALID: {
    status: 400,
    message: 'Invalid config {file}: {summary}',
    area: 'config',
  },
  BWK_ERR_CONFIG_CONFLICT: {
    status: 409,
    message: '{file} is at revision {actual}, not the expected revision {expected}',
    area: 'config',
  },
  BWK_ERR_CONFIG_LOCKED: {
    status: 503,
    message: '{file} is locked by another writer: gave up after {waitedMs} ms',
    area: 'config',
  },
  BWK_ERR_CONFIG_REVISION_NOT_FOUND: {
    status: 404,
    message: 'Revision {revision} of {file} is not in the history (kept: {kept})',
    area: 'config',
  },
  BWK_ERR_CONFIG_OPTIONS: {
    status: 500,
    message: 'Invalid config manager options: {detail}',
    area: 'config',
  },
  BWK_ERR_CONFIG_NOT_STARTED: {
    status: 500,
    message: 'The config manager for {file} is not started: call start() before {operation}',
    area: 'config',
  },
  BWK_ERR_CLI_USAGE: {
    status: 400,
    message: '{detail}',
    area: 'cli',
  },
  BWK_ERR_SUPERVISOR_OPTIONS: {
    status: 400,
    message: 'Invalid supervisor options: {summary}',
    area: 'supervisor',
  },
  BWK_ERR_SUPERVISOR_UNAVAILABLE: {
    status: 503,
    message: 'No app instance became ready within {holdMs} ms',
    area: 'supervisor',
  },
  BWK_ERR_SUPERVISOR_UPSTREAM: {
    status: 502,
    message: 'The app instance failed while answering: {detail}',
    area: 'supervisor',
  },
  BWK_ERR_SUPERVISOR_NOT_RUNNING: {
    status: 503,
    message: 'No supervisor is running for {stateDir}',
    area: 'supervisor',
  },
  BWK_ERR_SUPERVISOR_RELOAD_FAILED: {
    status: 500,
    message: 'Reload rolled back: {detail}',
    area: 'supervisor',
  },
  BWK_ERR_SUPERVISOR_BUSY: {
    status: 409,
    message: 'The supervisor is {state}: try again when it is done',
    area: 'supervisor',
  },
  BWK_ERR_SUPERVISOR_PORT_BUSY: {
    status: 500,
    message: 'Port {port} is still in use after {waitedMs} ms: {holder}',
    area: 'supervisor',
  },
  BWK_ERR_SUPERVISOR_HUNG: {
    status: 502,
    message:
      'The app instance handling this request stopped responding (its event loop was blocked) and was restarted; the request was not retried, as it may be what blocked it',
    area: 'supervisor',
  },
  BWK_ERR_SUPERVISOR_STATE_DIR: {
    status: 500,
    message: 'Cannot make the supervisor state directory {dir} private (mode 0700): {reason}',
    area: 'supervisor',
  },
  BWK_ERR_ERRORS_REPORT_INVALID: {
    status: 400,
    message: 'Invalid error report: {detail}',
    area: 'errors',
  },
  BWK_ERR_ERRORS_GROUP_NOT_FOUND: {
    status: 404,
    message: 'No error group {fingerprint}',
    area: 'errors',
  },
  BWK_ERR_ALERTS_CONFIG: {
    status: 500,
    message: 'Invalid alerting configuration: {summary}',
    area: 'alerts',
  },
  BWK_ERR_ALERTS_RECEIVER_NOT_FOUND: {
    status: 404,
    message: 'No alert receiver named {receiver}',
    area: 'alerts',
  },
  BWK_ERR_ALERTS_NOT_FIRING: {
    status: 409,
    message: 'Alert {rule} is not firing (it is {state}): nothing to acknowledge',
    area: 'alerts',
  },
  BWK_ERR_ALERTS_NOTIFICATION_NOT_FOUND: {
    status: 404,
    message: 'No notification {id} in the alert outbox',
    area: 'alerts',
  },
  BWK_ERR_METRICS_OPTIONS: {
    status: 500,
    message: 'Invalid metrics history options: {summary}',
    area: 'metrics',
  },
  BWK_ERR_METRICS_QUERY_INVALID: {
    status: 400,
    message: 'Invalid metrics history query: {detail}',
    area: 'metrics',
  },
  BWK_ERR_OUTBOUND_OPEN: {
    status: 503,
    message: 'The circuit breaker of {upstream} is open: calls fail fast until a trial call succeeds',
    area: 'outbound',
  },
  BWK_ERR_OUTBOUND_DEADLINE: {
    status: 504,
    message: '{upstream} did not answer within the {deadlineMs} ms deadline',
    area: 'outbound',
  },
  BWK_ERR_OUTBOUND_THROTTLED: {
    status: 503,
    message:
      'The call to {upstream} was rejected locally: it refuses or fails most calls (adaptive throttling)',
    area: 'outbound',
  },
  BWK_ERR_OUTBOUND_KILLED: {
    status: 503,
    message: 'Calls to {upstream} are switched off (its kill switch, the flag bulwark.outbound.{upstream})',
    area: 'outbound',
  },
  BWK_ERR_OUTBOUND_FAILED: {
    status: 502,
    message: 'The call to {upstream} failed: {detail}',
    area: 'outbound',
  },
  BWK_ERR_OUTBOUND_UNKNOWN_UPSTREAM: {
    status: 500,
    message: 'No upstream {upstream} with an origin is configured (outbound.upstreams)',
    area: 'outbound',
  },
  BWK_ERR_OUTBOUND_OPTIONS: {
    status: 500,
    message: 'Invalid outbound options: {detail}',
    area: 'outbound',
  },
  BWK_ERR_LEAKS_SNAPSHOT_BUSY: {
    status: 409,
    message: 'A heap snapshot is being written already: retry once it is done',
    area: 'leaks',
  },
  BWK_ERR_LEAKS_SNAPSHOT_REFUSED: {
    status: 409,
    message: 'Heap snapshot refused: {reason}',
    area: 'leaks',
  },
  BWK_ERR_LEAKS_SNAPSHOT_NOT_FOUND: {
    status: 404,
    message: 'No heap snapshot named {name}',
    area: 'leaks',
  },
} as const satisfies Record<string, { status: number; message: string; area: string }>;

/** Every error code Bulwark can produce. */
export type ErrorCode = keyof typeof catalogue;

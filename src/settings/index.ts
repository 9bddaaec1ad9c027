import path from 'node:path';
import Value from 'typebox/value';
import { bulwarkError, type FieldProblem } from '../errors/index.js';
import { PROTECTABLE_ENDPOINTS, settingFields, settingsSchema, type SettingName } from './schema.js';

export { PROTECTABLE_ENDPOINTS, settingFields, type SettingName } from './schema.js';

/** An endpoint `BULWARK_PROTECT_ENDPOINTS` can put behind a key. */
export type ProtectableEndpoint = (typeof PROTECTABLE_ENDPOINTS)[number];

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** Validated settings. Every field has its default filled in. */
export interface Settings {
  port: number;
  host: string;
  logLevel: LogLevel;
  /** Absolute path. */
  dataDir: string;
  databaseUrl: string | undefined;
  /** Deadline of one PostgreSQL query (migrations excepted), in ms. */
  storeQueryTimeoutMs: number;
  redisUrl: string | undefined;
  sentryDsn: string | undefined;
  adminKey: string | undefined;
  /** Comma list of {@link PROTECTABLE_ENDPOINTS} that need a key, as given; see `protectedEndpoints()`. */
  protectEndpoints: string | undefined;
  /** Bearer token that opens `/metrics` and the protected `/health` routes only. */
  metricsToken: string | undefined;
  /** Absolute path, when set. */
  flagsFile: string | undefined;
  alertsFile: string | undefined;
  shutdownTimeoutMs: number;
  /** Time to receive a request's headers, in ms; at most `requestTimeoutMs`. */
  headersTimeoutMs: number;
  /** Time to receive a whole request (headers and body), in ms. */
  requestTimeoutMs: number;
  /** Idle time allowed between requests on a keep-alive connection, in ms. */
  keepAliveTimeoutMs: number;
  /** Inactivity (no data either way) after which a connection is closed, in ms. */
  idleTimeoutMs: number;
  /** Connections open at once; more are closed on accept. */
  maxConnections: number;
  /** Requests per keep-alive connection before it is closed; 0: unlimited. */
  maxRequestsPerSocket: number;
  /** Default largest request body, in bytes. */
  bodyLimitBytes: number;
  /** Only `development` changes behaviour (stack traces in 5xx bodies). */
  nodeEnv: string;
}

/** Settings given in code; each overrides its environment variable. */
export type SettingsInput = Partial<Settings>;

/**
 * Reads and validates settings: `input` wins over `env`, which wins over the defaults. Empty
 * environment variables count as unset. Throws `BWK_ERR_SETTINGS_INVALID` listing every bad field
 * (by variable name, or by option name when it came from code); nothing is returned half-valid.
 */
export function loadSettings(input: SettingsInput = {}, env: NodeJS.ProcessEnv = process.env): Settings {
  const raw: Record<string, unknown> = {};
  const source = new Map<string, string>();
  for (const [name, field] of Object.entries(settingFields)) {
    const fromInput = (input as Record<string, unknown>)[field.option];
    const fromEnv = env[name];
    if (fromInput !== undefined) {
      raw[name] = fromInput;
      source.set(name, field.option);
    } else if (fromEnv !== undefined && fromEnv.trim() !== '') {
      raw[name] = fromEnv.trim();
      source.set(name, name);
    }
  }

  const problems: FieldProblem[] = [];
  const seen = new Set<string>();
  // Value.Convert is lenient (`true` → 1, `0x10` → 16, `1e3` → 1000): integers must be plain digits.
  for (const [name, field] of Object.entries(settingFields) as [
    SettingName,
    (typeof settingFields)[SettingName],
  ][]) {
    const given = raw[name];
    if (
      (field.schema as { type?: unknown }).type === 'integer' &&
      typeof given === 'string' &&
      !/^-?\d+$/.test(given)
    ) {
      seen.add(name);
      problems.push({
        field: source.get(name) ?? name,
        message: `${describeRejected(name, given)} is invalid: ${field.hint}`,
      });
    }
  }
  const value = Value.Default(settingsSchema, Value.Convert(settingsSchema, raw)) as Record<string, unknown>;
  for (const error of Value.Errors(settingsSchema, value)) {
    const name = error.instancePath.split('/')[1] as SettingName | undefined;
    if (name === undefined || seen.has(name)) continue;
    seen.add(name);
    problems.push({
      field: source.get(name) ?? name,
      message: `${describeRejected(name, raw[name])} is invalid: ${settingFields[name].hint}`,
    });
  }
  if (!seen.has('BULWARK_HEADERS_TIMEOUT_MS') && !seen.has('BULWARK_REQUEST_TIMEOUT_MS')) {
    problems.push(...fitHeadersTimeout(value, raw, source));
  }
  if (!seen.has('BULWARK_PROTECT_ENDPOINTS')) problems.push(...checkProtection(value, source));
  if (problems.length > 0) {
    const summary = problems.map((p) => `${p.field} ${p.message}`).join('; ');
    throw bulwarkError('BWK_ERR_SETTINGS_INVALID', { summary }, { details: problems });
  }

  const settings = Object.fromEntries(
    Object.entries(settingFields).map(([name, field]) => [field.option, value[name]]),
  ) as unknown as Settings;
  settings.dataDir = path.resolve(settings.dataDir);
  if (settings.flagsFile !== undefined) settings.flagsFile = path.resolve(settings.flagsFile);
  if (settings.alertsFile !== undefined) settings.alertsFile = path.resolve(settings.alertsFile);
  return settings;
}

/**
 * Node refuses a headers timeout longer than the request timeout (it could never apply): a default
 * one shrinks to the request timeout, one that was given is a problem.
 */
function fitHeadersTimeout(
  value: Record<string, unknown>,
  raw: Record<string, unknown>,
  source: Map<string, string>,
): FieldProblem[] {
  const name = 'BULWARK_HEADERS_TIMEOUT_MS';
  const headers = value[name] as number;
  const whole = value['BULWARK_REQUEST_TIMEOUT_MS'] as number;
  if (headers <= whole) return [];
  if (!source.has(name)) {
    value[name] = whole;
    return [];
  }
  return [
    {
      field: source.get(name) ?? name,
      message: `${describeRejected(name, raw[name])} is invalid: must be at most BULWARK_REQUEST_TIMEOUT_MS (${whole})`,
    },
  ];
}

/**
 * The endpoints that need a key: those listed in `protectEndpoints`, plus `metrics` when a metrics
 * token is set (a token nobody needs would be a mistake).
 */
export function protectedEndpoints(
  settings: Pick<Settings, 'protectEndpoints' | 'metricsToken'>,
): Set<ProtectableEndpoint> {
  const listed = (settings.protectEndpoints ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name): name is ProtectableEndpoint =>
      (PROTECTABLE_ENDPOINTS as readonly string[]).includes(name),
    );
  const endpoints = new Set(listed);
  if (settings.metricsToken !== undefined) endpoints.add('metrics');
  return endpoints;
}

/** A protected endpoint must have a key that opens it: else nobody could ever read it. */
function checkProtection(value: Record<string, unknown>, source: Map<string, string>): FieldProblem[] {
  const name = 'BULWARK_PROTECT_ENDPOINTS';
  const adminKey = value['BULWARK_ADMIN_KEY'] !== undefined;
  const endpoints = protectedEndpoints({
    protectEndpoints: value[name] as string | undefined,
    metricsToken: value['BULWARK_METRICS_TOKEN'] as string | undefined,
  });
  const locked = [...endpoints].filter((endpoint) =>
    endpoint === 'api-docs' ? !adminKey : !adminKey && value['BULWARK_METRICS_TOKEN'] === undefined,
  );
  if (locked.length === 0) return [];
  return [
    {
      field: source.get(name) ?? name,
      message: `${locked.join(', ')} would be closed to everyone: set BULWARK_ADMIN_KEY${locked.includes('api-docs') ? '' : ' or BULWARK_METRICS_TOKEN'}`,
    },
  ];
}

/** A copy of the settings safe to log or show: secrets and URL passwords are masked. */
export function redactSettings(settings: Settings): Record<string, unknown> {
  const shown: Record<string, unknown> = {
    ...settings,
    databaseUrl: maskUrl(settings.databaseUrl),
    redisUrl: maskUrl(settings.redisUrl),
  };
  // Every secret, so that a new one is masked without being listed here.
  for (const field of Object.values(settingFields)) {
    if ('secret' in field && shown[field.option] !== undefined) shown[field.option] = '[set]';
  }
  return shown;
}

/** Shows a rejected value without leaking it when it is a secret or holds a password. */
function describeRejected(name: SettingName, value: unknown): string {
  if ('secret' in settingFields[name]) return `(hidden value of ${String(value).length} characters)`;
  if (typeof value === 'string' && name.endsWith('_URL')) return JSON.stringify(maskUrl(value) ?? value);
  return JSON.stringify(value);
}

/** Query parameters whose value is masked: `password`, `sslpassword`, `auth_token`, `apiKey`, ... */
const SECRET_PARAM = /pass|pwd|secret|token|key|auth|credential|signature/i;

/**
 * A URL safe to show: the password of its userinfo, a userinfo without a password (`https://TOKEN@host`
 * puts the credential in the user name) and the value of every query parameter whose name looks
 * secret are replaced with `***`; the rest is kept as written.
 */
function maskUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    else if (parsed.username !== '') parsed.username = '***';
    // Edited as text, not through searchParams, so the other parameters keep their exact spelling.
    parsed.search = parsed.search
      .slice(1)
      .split('&')
      .map((pair) => {
        const at = pair.indexOf('=');
        const name = at === -1 ? pair : pair.slice(0, at);
        return at !== -1 && SECRET_PARAM.test(decodeName(name)) ? `${name}=***` : pair;
      })
      .join('&');
    return parsed.toString();
  } catch {
    return '[unparseable]';
  }
}

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}

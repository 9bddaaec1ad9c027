import { readFileSync } from 'node:fs';
import path from 'node:path';
import Type, { type Static } from 'typebox';
import Value from 'typebox/value';
import { bulwarkError, type FieldProblem } from '../errors/index.js';
import { invalidProxyEntries } from './proxy-headers.js';

const ms = (doc: string, fallback: number, minimum = 1) =>
  Type.Integer({ minimum, maximum: 86_400_000, default: fallback, description: doc });

/**
 * Every option of `bulwark supervise`, with its default. The CLI flag of `fooBarMs` is
 * `--foo-bar-ms`; a config file (`--config supervise.json`) uses the same names as JSON keys.
 */
export const superviseSchema = Type.Object(
  {
    command: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      description: 'the app command (after `--` on the command line)',
    }),
    env: Type.Record(Type.String(), Type.String(), {
      default: {},
      description: 'extra environment for the app (config file only)',
    }),
    instances: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 64,
        description: 'cluster mode: this many app processes behind the supervisor on one port',
      }),
    ),
    balance: Type.Union([Type.Literal('socket'), Type.Literal('round-robin'), Type.Literal('proxy')], {
      default: 'socket',
      description:
        "socket: the supervisor holds the listening socket and every app process accepts from it (Node apps, through a preload); round-robin: the supervisor accepts on that socket and deals each new connection to the next app process over IPC, as Node's cluster does (a command that starts node directly); proxy: direct mode lets the app bind the port, cluster mode forwards through the supervisor's proxy (retries a crashed instance's idempotent requests; any app)",
    }),
    port: Type.Integer({
      minimum: 0,
      maximum: 65_535,
      default: 3000,
      description: 'the public port (default $PORT, else 3000); direct mode passes it to the app as PORT',
    }),
    host: Type.String({ minLength: 1, default: '127.0.0.1', description: 'the public host (default $HOST)' }),
    stateDir: Type.String({
      minLength: 1,
      default: 'data/supervisor',
      description: 'state, crash records, reports and logs (default $BULWARK_DATA_DIR/supervisor)',
    }),
    readyPath: Type.String({
      pattern: '^/',
      default: '/health/ready',
      description: 'HTTP readiness probe; an IPC ready message from the app also counts',
    }),
    livePath: Type.String({ pattern: '^/', default: '/health/live', description: 'HTTP liveness probe' }),
    startTimeoutMs: ms('time to become ready before the start counts as failed', 30_000),
    stopTimeoutMs: ms('time between SIGTERM to the app processes and SIGKILL', 10_000),
    probeIntervalMs: ms('liveness probe interval', 1_000, 50),
    probeTimeoutMs: ms('liveness probe timeout', 2_000, 10),
    probeFailures: Type.Integer({
      minimum: 1,
      maximum: 100,
      default: 3,
      description: 'failed liveness probes in a row that make an app without a heartbeat hung',
    }),
    heartbeatTimeoutMs: ms('no IPC heartbeat for this long = event loop blocked', 3_000, 100),
    backoffInitialMs: ms('delay of the second restart in a row (the first is immediate)', 100, 0),
    backoffMaxMs: ms('restart delay cap', 30_000, 0),
    stableMs: ms('uptime after which the restart streak resets', 10_000, 0),
    maxRestarts: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 10,
      description: 'restarts allowed per window before the app is parked',
    }),
    restartWindowMs: ms('the restart budget window', 60_000),
    parkProbeMs: ms('while parked, one start attempt this often', 30_000, 100),
    finalExitCodes: Type.Array(Type.Integer({ minimum: 0, maximum: 255 }), {
      default: [78],
      description: 'exit codes that mean "do not restart" (78 = EX_CONFIG)',
    }),
    maxMemoryMb: Type.Optional(
      Type.Integer({
        minimum: 16,
        maximum: 1_048_576,
        description: 'RSS limit per instance (graded response)',
      }),
    ),
    maxCpuPercent: Type.Optional(
      Type.Integer({
        minimum: 10,
        maximum: 6_400,
        description: 'CPU limit per instance, averaged over cpuWindowMs (100 = one core)',
      }),
    ),
    cpuWindowMs: ms('CPU averaging window', 10_000, 100),
    sampleMs: ms('resource sampling interval', 1_000, 50),
    pressureWarnAt: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      default: 0.7,
      description: 'fraction of the limit that logs a warning',
    }),
    pressureActAt: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      default: 0.8,
      description: 'fraction of the limit that starts soft recovery',
    }),
    recoveryDwellMs: ms('time a recovery step gets before it is judged', 5_000, 10),
    reloadProbes: Type.Integer({
      minimum: 1,
      maximum: 100,
      default: 3,
      description: 'probes a new instance must pass before an old one stops',
    }),
    holdMs: ms('cluster mode: how long a request waits for a ready instance', 10_000, 0),
    trustedProxies: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'cluster mode: addresses or CIDR ranges of proxies in front whose X-Forwarded-* headers are believed (comma list)',
    }),
    logMaxBytes: Type.Integer({
      minimum: 1024,
      maximum: 1_099_511_627_776,
      default: 10_485_760,
      description: 'app log file size before rotation',
    }),
    logKeep: Type.Integer({ minimum: 1, maximum: 100, default: 5, description: 'rotated log files kept' }),
    echo: Type.Boolean({ default: true, description: "also copy the app's output to the supervisor's" }),
    metricsPort: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 65_535,
        description: "the supervisor's own /metrics and /status port",
      }),
    ),
    metricsHost: Type.String({ minLength: 1, default: '127.0.0.1', description: 'host of metricsPort' }),
  },
  { additionalProperties: false },
);

/** Resolved options of one supervisor. */
export type SuperviseOptions = Static<typeof superviseSchema>;

/** The option name as a CLI flag: `startTimeoutMs` → `--start-timeout-ms`. */
export function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** Inputs of {@link resolveSuperviseOptions}: CLI values as given (strings), a config file, the env. */
export interface SuperviseInput {
  /** Options from the command line, by option name; strings are converted like the file's values. */
  cli?: Record<string, unknown>;
  /** A JSON config file with the same keys. */
  configFile?: string;
  env?: NodeJS.ProcessEnv;
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw bulwarkError(
      'BWK_ERR_SUPERVISOR_OPTIONS',
      { summary: `--config ${file}: ${(error as Error).message}` },
      { details: [{ field: '--config', message: `cannot read ${file}: ${(error as Error).message}` }] },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    const message = `${file} is not valid JSON: ${(error as Error).message}`;
    throw bulwarkError(
      'BWK_ERR_SUPERVISOR_OPTIONS',
      { summary: message },
      { details: [{ field: '--config', message }] },
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    const message = `${file} must hold a JSON object of options`;
    throw bulwarkError(
      'BWK_ERR_SUPERVISOR_OPTIONS',
      { summary: message },
      { details: [{ field: '--config', message }] },
    );
  }
  return parsed as Record<string, unknown>;
}

/**
 * Options from (lowest first) the defaults, `$PORT`/`$HOST`/`$BULWARK_DATA_DIR`, the config file and
 * the command line. Every bad field is named as its flag (or `file: key`), and nothing starts.
 */
export function resolveSuperviseOptions(input: SuperviseInput): SuperviseOptions {
  const env = input.env ?? process.env;
  const raw: Record<string, unknown> = {};
  const source = new Map<string, string>();
  const take = (values: Record<string, unknown>, name: (key: string) => string) => {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined) continue;
      raw[key] = value;
      source.set(key, name(key));
    }
  };
  const fromEnv: Record<string, unknown> = {};
  if (env['PORT'] !== undefined && env['PORT'].trim() !== '') fromEnv['port'] = env['PORT'].trim();
  if (env['HOST'] !== undefined && env['HOST'].trim() !== '') fromEnv['host'] = env['HOST'].trim();
  if (env['BULWARK_DATA_DIR'] !== undefined && env['BULWARK_DATA_DIR'].trim() !== '')
    fromEnv['stateDir'] = path.join(env['BULWARK_DATA_DIR'].trim(), 'supervisor');
  take(fromEnv, (key) => ({ port: 'PORT', host: 'HOST', stateDir: 'BULWARK_DATA_DIR' })[key] ?? key);
  if (input.configFile !== undefined) {
    const file = input.configFile;
    take(readConfigFile(file), (key) => `${file}: ${key}`);
  }
  take(input.cli ?? {}, (key) => (key === 'command' ? '<command...>' : flagOf(key)));

  const problems: FieldProblem[] = [];
  const seen = new Set<string>();
  const integerKeys = Object.entries(superviseSchema.properties)
    .filter(([, s]) => (s as { type?: unknown }).type === 'integer')
    .map(([key]) => key);
  for (const key of integerKeys) {
    const given = raw[key];
    if (typeof given === 'string' && !/^-?\d+$/.test(given.trim())) {
      seen.add(key);
      problems.push({ field: source.get(key) ?? key, message: `"${given}" is not an integer` });
    }
  }
  for (const key of ['finalExitCodes', 'trustedProxies']) {
    const given = raw[key];
    if (typeof given !== 'string') continue;
    const text = given.trim();
    raw[key] = text === '' ? [] : text.split(',').map((part) => part.trim());
  }
  const value = Value.Default(
    superviseSchema,
    Value.Convert(superviseSchema, structuredClone(raw)),
  ) as Record<string, unknown>;
  for (const error of Value.Errors(superviseSchema, value)) {
    const params = error.params as { requiredProperties?: string[]; additionalProperties?: string[] };
    const key =
      error.instancePath.split('/').filter((part) => part !== '')[0] ??
      params.requiredProperties?.[0] ??
      params.additionalProperties?.[0] ??
      '';
    if (seen.has(key)) continue;
    seen.add(key);
    const unknown = !(key in superviseSchema.properties);
    problems.push({
      field: source.get(key) ?? (key === 'command' ? '<command...>' : key),
      message: unknown
        ? `unknown option "${key}"`
        : key === 'command' && raw['command'] === undefined
          ? 'missing: give the app command after --, e.g. bulwark supervise -- node dist/server.js'
          : `${JSON.stringify(raw[key])} is invalid: ${error.message}`,
    });
  }
  const options = value as SuperviseOptions;
  const badProxies = seen.has('trustedProxies') ? [] : invalidProxyEntries(options.trustedProxies);
  if (badProxies.length > 0)
    problems.push({
      field: source.get('trustedProxies') ?? 'trustedProxies',
      message: `${badProxies.map((entry) => `"${entry}"`).join(', ')}: not an IP address or CIDR range`,
    });
  if (problems.length === 0 && options.pressureWarnAt > options.pressureActAt)
    problems.push({
      field: source.get('pressureWarnAt') ?? 'pressureWarnAt',
      message: `must not be above pressureActAt (${options.pressureActAt})`,
    });
  if (problems.length > 0) {
    const summary = problems.map((p) => `${p.field} ${p.message}`).join('; ');
    throw bulwarkError('BWK_ERR_SUPERVISOR_OPTIONS', { summary }, { details: problems });
  }
  options.stateDir = path.resolve(options.stateDir);
  return options;
}

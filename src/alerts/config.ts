import { readFileSync } from 'node:fs';
import Type from 'typebox';
import Value from 'typebox/value';
import { bulwarkError, type FieldProblem } from '../errors/index.js';
import type { MetricsHistory } from '../metrics/history.js';
import type { SeriesReader } from './engine-options.js';
import { validateReceiver, type Receiver } from './notifiers.js';
import type { InhibitRule, MaintenanceWindow } from './manager.js';
import type { AlertRule } from './rules.js';

const ruleSchema = Type.Object(
  {
    id: Type.String({ pattern: '^[A-Za-z0-9._-]{1,100}$' }),
    kind: Type.Enum(['threshold', 'absence', 'anomaly']),
    series: Type.String({ minLength: 1, maxLength: 500 }),
    windowMs: Type.Optional(Type.Integer({ minimum: 0 })),
    fireAbove: Type.Optional(Type.Number()),
    clearAbove: Type.Optional(Type.Number()),
    fireBelow: Type.Optional(Type.Number()),
    clearBelow: Type.Optional(Type.Number()),
    forMs: Type.Optional(Type.Integer({ minimum: 0 })),
    direction: Type.Optional(Type.Enum(['above', 'below', 'both'])),
    k: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    clearK: Type.Optional(Type.Number({ minimum: 0 })),
    seasonDays: Type.Optional(Type.Integer({ minimum: 0, maximum: 90 })),
    minDays: Type.Optional(Type.Integer({ minimum: 0, maximum: 90 })),
    minSamples: Type.Optional(Type.Integer({ minimum: 3 })),
    recentMs: Type.Optional(Type.Integer({ minimum: 60_000 })),
    halfLifeMs: Type.Optional(Type.Integer({ minimum: 1_000 })),
    seasonWeight: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    minBand: Type.Optional(Type.Number({ minimum: 0 })),
    minBandRatio: Type.Optional(Type.Number({ minimum: 0 })),
    severity: Type.Enum(['critical', 'warning', 'info']),
    summary: Type.String({ minLength: 1, maxLength: 500 }),
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
    action: Type.Optional(
      Type.Union([
        Type.Object(
          { type: Type.Literal('flag.kill'), flag: Type.String({ minLength: 1 }) },
          { additionalProperties: false },
        ),
        Type.Object(
          { type: Type.Literal('queue.pause'), queue: Type.String({ minLength: 1 }) },
          { additionalProperties: false },
        ),
        Type.Object({ type: Type.Literal('log') }, { additionalProperties: false }),
      ]),
    ),
  },
  { additionalProperties: false },
);

const severity = Type.Enum(['critical', 'warning', 'info']);
const escalationSchema = Type.Record(
  Type.String(),
  Type.Array(
    Type.Object(
      { afterMs: Type.Integer({ minimum: 0 }), receivers: Type.Array(Type.String(), { minItems: 1 }) },
      { additionalProperties: false },
    ),
  ),
);
const inhibitSchema = Type.Array(
  Type.Object(
    { source: severity, target: severity, equal: Type.Array(Type.String()) },
    { additionalProperties: false },
  ),
);
const hhmm = Type.String({ pattern: '^([01]\\d|2[0-3]):[0-5]\\d$' });
const windowsSchema = Type.Array(
  Type.Object(
    {
      name: Type.String({ minLength: 1 }),
      matchers: Type.Record(Type.String(), Type.String()),
      days: Type.Array(Type.Integer({ minimum: 0, maximum: 6 }), { minItems: 1 }),
      from: hhmm,
      to: hhmm,
    },
    { additionalProperties: false },
  ),
);

const groupSchema = Type.Object(
  {
    by: Type.Array(Type.String({ minLength: 1 })),
    waitMs: Type.Optional(Type.Integer({ minimum: 0 })),
    intervalMs: Type.Optional(Type.Integer({ minimum: 1_000 })),
  },
  { additionalProperties: false },
);
const cron = Type.Union([Type.String({ minLength: 9, maxLength: 100 }), Type.Literal(false)]);
const reportsSchema = Type.Object(
  {
    receivers: Type.Array(Type.String(), { minItems: 1 }),
    daily: Type.Optional(cron),
    weekly: Type.Optional(cron),
    tz: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);

function pathOf(instancePath: string): string {
  return instancePath
    .split('/')
    .filter((part) => part !== '')
    .map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part}`))
    .join('');
}

/** Alerting configuration: the `alerts` option of `createBulwark()`, or the `BULWARK_ALERTS_FILE` JSON. */
export interface AlertsConfig {
  rules?: AlertRule[];
  receivers: Receiver[];
  /** Receivers by rule id (default: every receiver gets every rule). */
  routes?: Record<string, string[]>;
  /** A firing alert nobody acknowledged is notified again this often (default 4 h). */
  repeatIntervalMs?: number;
  /** How long sent and dead notifications stay in the outbox (default 14 days, at least 8). */
  outboxRetentionMs?: number;
  /** Escalation steps by rule id (`*` for every rule): after `afterMs` unacknowledged, also `receivers`. */
  escalation?: Record<string, { afterMs: number; receivers: string[] }[]>;
  /**
   * Grouping into digests for webhook, Slack and email receivers: alerts with the same `by` labels
   * go together, the first batch after `waitMs` (default 30 s), later ones at most every
   * `intervalMs` (default 5 min). Unset: each alert on its own.
   */
  group?: { by: string[]; waitMs?: number; intervalMs?: number };
  /** Inhibition rules (default: a critical alert mutes the warnings of the same `component`). */
  inhibit?: InhibitRule[];
  /** Recurring maintenance windows (UTC) during which matching alerts are not notified. */
  windows?: MaintenanceWindow[];
  /**
   * Daily and weekly reports (errors, alerts, traffic, uptime) to these receivers, as scheduled
   * jobs (cron, default 08:00 daily and Monday 08:00; `false` turns one off). Not for PagerDuty.
   */
  reports?: { receivers: string[]; daily?: string | false; weekly?: string | false; tz?: string };
  /** Ship Bulwark's default rules ({@link defaultRules}) besides `rules` (default true). */
  defaultRules?: boolean;
  evaluateEveryMs?: number;
  sendEveryMs?: number;
}

/** Rules for the Bulwark tools, on by default (a rule of `rules` with the same id replaces one). */
export function defaultRules(): AlertRule[] {
  return [
    {
      id: 'bulwark.error-ratio',
      kind: 'threshold',
      series: 'http.error_ratio{route="*"}',
      fireAbove: 0.05,
      clearAbove: 0.02,
      forMs: 120_000,
      severity: 'critical',
      summary: 'More than 5 % of requests fail with a 5xx',
    },
    {
      id: 'bulwark.latency-p99',
      kind: 'threshold',
      series: 'http.latency_p99_ms{route="*"}',
      fireAbove: 1_000,
      clearAbove: 500,
      forMs: 300_000,
      severity: 'warning',
      summary: 'p99 latency above 1 s',
    },
    {
      id: 'bulwark.redis-degraded',
      kind: 'threshold',
      series: 'dependency.mode{dependency="redis"}',
      fireBelow: 1,
      forMs: 60_000,
      severity: 'warning',
      summary: 'Redis is degraded: running on the embedded fallback',
    },
    {
      id: 'bulwark.memory',
      kind: 'threshold',
      series: 'process.rss_bytes',
      fireAbove: 1_536 * 1_048_576,
      clearAbove: 1_280 * 1_048_576,
      forMs: 300_000,
      severity: 'warning',
      summary: 'Resident memory above 1.5 GiB',
    },
    {
      id: 'bulwark.restarts',
      kind: 'threshold',
      series: 'supervisor.restarts_in_window',
      fireAbove: 3,
      clearAbove: 0,
      severity: 'warning',
      summary: "The app restarted more than 3 times within the supervisor's restart window",
    },
    {
      id: 'bulwark.parked',
      kind: 'threshold',
      series: 'supervisor.parked_slots',
      fireAbove: 0,
      severity: 'critical',
      summary: 'The supervisor parked the app: it kept failing and is no longer restarted',
    },
    {
      id: 'bulwark.event-loop',
      kind: 'threshold',
      series: 'nodejs.eventloop_lag_p99_ms',
      fireAbove: 500,
      clearAbove: 100,
      forMs: 120_000,
      severity: 'warning',
      summary: 'Event-loop delay p99 above 500 ms',
    },
    {
      id: 'bulwark.leak',
      kind: 'threshold',
      series: 'leak.suspected',
      fireAbove: 0,
      severity: 'warning',
      summary:
        'A resource leak is suspected: memory, handles, descriptors or listeners grow beyond their budget (see the leaks:growth health check)',
    },
    {
      id: 'bulwark.held-connections',
      kind: 'threshold',
      series: 'leak.held_connections',
      fireAbove: 0,
      forMs: 60_000,
      severity: 'warning',
      summary:
        'A store connection is held out of the pool for too long (the leaks:growth health check names the stack)',
    },
  ];
}

/** Validates an alerting configuration from `source` (`alerts` or a file name); every problem named. */
export function validateAlertsConfig(value: unknown, source: string): AlertsConfig {
  const problems: FieldProblem[] = [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push({ field: source, message: 'must be an object with `receivers` (and `rules`, `routes`)' });
  } else {
    const config = value as Record<string, unknown>;
    const receivers = config['receivers'];
    if (!Array.isArray(receivers))
      problems.push({ field: `${source}.receivers`, message: 'must be an array' });
    else receivers.forEach((r, i) => problems.push(...validateReceiver(r, `${source}.receivers[${i}]`)));
    const names = Array.isArray(receivers) ? receivers.map((r) => (r as { name?: unknown }).name) : [];
    const rules = config['rules'] ?? [];
    if (!Array.isArray(rules)) problems.push({ field: `${source}.rules`, message: 'must be an array' });
    else
      rules.forEach((rule, i) => {
        for (const error of Value.Errors(ruleSchema, rule)) {
          const at = error.instancePath.replace(/^\//, '').replace(/\//g, '.');
          problems.push({
            field: `${source}.rules[${i}]${at === '' ? '' : `.${at}`}`,
            message: error.message,
          });
        }
        const r = rule as Partial<AlertRule>;
        if (r.kind === 'threshold' && r.fireAbove === undefined && r.fireBelow === undefined)
          problems.push({
            field: `${source}.rules[${i}]`,
            message: 'a threshold rule needs fireAbove or fireBelow',
          });
        if (r.kind === 'anomaly' && (r.minDays ?? 3) > (r.seasonDays ?? 7))
          problems.push({
            field: `${source}.rules[${i}].minDays`,
            message: 'must not exceed seasonDays (the days the baseline looks back)',
          });
      });
    const known = (field: string, name: unknown) => {
      if (!names.includes(name)) problems.push({ field, message: `no receiver named ${String(name)}` });
    };
    const escalation = config['escalation'];
    if (escalation !== undefined)
      for (const error of Value.Errors(escalationSchema, escalation))
        problems.push({ field: `${source}.escalation${pathOf(error.instancePath)}`, message: error.message });
    if (typeof escalation === 'object' && escalation !== null)
      for (const [rule, steps] of Object.entries(escalation as Record<string, unknown>))
        if (Array.isArray(steps))
          steps.forEach((step, i) =>
            ((step as { receivers?: unknown }).receivers as unknown[] | undefined)?.forEach?.((name, j) =>
              known(`${source}.escalation.${rule}[${i}].receivers[${j}]`, name),
            ),
          );
    for (const [key, schema] of [
      ['inhibit', inhibitSchema],
      ['windows', windowsSchema],
      ['repeatIntervalMs', Type.Integer({ minimum: 60_000 })],
      // The weekly report counts the notifications of the week before it.
      ['outboxRetentionMs', Type.Integer({ minimum: 8 * 86_400_000 })],
      ['group', groupSchema],
    ] as const) {
      if (config[key] === undefined) continue;
      for (const error of Value.Errors(schema, config[key]))
        problems.push({ field: `${source}.${key}${pathOf(error.instancePath)}`, message: error.message });
    }
    const reports = config['reports'];
    if (reports !== undefined) {
      for (const error of Value.Errors(reportsSchema, reports))
        problems.push({ field: `${source}.reports${pathOf(error.instancePath)}`, message: error.message });
      const wanted = (reports as { receivers?: unknown }).receivers;
      if (Array.isArray(wanted))
        wanted.forEach((name, i) => {
          const receiver = (receivers as { name?: unknown; type?: unknown }[] | undefined)?.find(
            (r) => r.name === name,
          );
          if (receiver === undefined) known(`${source}.reports.receivers[${i}]`, name);
          else if (receiver.type === 'pagerduty')
            problems.push({
              field: `${source}.reports.receivers[${i}]`,
              message: 'a PagerDuty receiver cannot take reports (each would open an incident)',
            });
        });
    }
    const routes = config['routes'];
    if (routes !== undefined) {
      if (typeof routes !== 'object' || routes === null)
        problems.push({ field: `${source}.routes`, message: 'must be an object' });
      else
        for (const [rule, targets] of Object.entries(routes))
          for (const target of Array.isArray(targets) ? targets : [targets])
            if (!names.includes(target))
              problems.push({
                field: `${source}.routes.${rule}`,
                message: `no receiver named ${String(target)}`,
              });
    }
  }
  if (problems.length > 0) {
    const summary = problems.map((p) => `${p.field} ${p.message}`).join('; ');
    throw bulwarkError('BWK_ERR_ALERTS_CONFIG', { summary }, { details: problems });
  }
  return value as AlertsConfig;
}

/** Reads and validates the alerting JSON file. */
export function readAlertsFile(file: string): AlertsConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    const message = `cannot read ${file}: ${(error as Error).message}`;
    throw bulwarkError(
      'BWK_ERR_ALERTS_CONFIG',
      { summary: message },
      { details: [{ field: file, message }] },
    );
  }
  return validateAlertsConfig(parsed, file);
}

/**
 * Rules read the metrics history: the mean of the points' averages over `windowMs` (at least two
 * sampling intervals, so the newest point is always in it), undefined when there is none.
 */
export function historyReader(history: MetricsHistory): SeriesReader {
  return async (series, windowMs, now) => {
    const from = now - Math.max(windowMs, 2 * history.intervalMs);
    const { points } = await history.query(series, Math.max(0, from), now);
    if (points.length === 0) return undefined;
    if (windowMs === 0) return points.at(-1)?.avg;
    return points.reduce((sum, p) => sum + p.avg, 0) / points.length;
  };
}

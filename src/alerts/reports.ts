/**
 * Scheduled daily and weekly reports: errors, alerts, request volume, latency and uptime over a
 * period, read from the store and the metrics history, and sent through the alert notifiers as one
 * outbox notification per receiver (so the engine's sender delivers each exactly once, with its
 * retries, silences and budget).
 */
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import { bulwarkError } from '../errors/index.js';
import { parseSeriesName, type HistoryPoint, type MetricsHistory } from '../metrics/history.js';
import type { Job, JobQueue } from '../queue/types.js';
import type { Store, StoreTables } from '../store/types.js';
import type { ErrorStore } from '../tracker/store.js';
import type { ErrorState } from '../tracker/types.js';
import type { Notification } from './notifier-types.js';
import { AlertOutbox } from './outbox.js';
import type { ReportAlerts, ReportData, ReportErrors, ReportTraffic, ReportUptime } from './report-data.js';
import { plural, reportText } from './reports-text.js';

/** Options of the report functions. */
export interface ReportOptions {
  store: Store;
  logger: Logger;
  serviceId: string;
  /** The error tracker's store; without it the report has no errors part. */
  errors?: ErrorStore;
  /** The metrics history; without it the report has no traffic and uptime parts. */
  history?: MetricsHistory;
  /** Receivers (names) that get reports; the engine's receivers. */
  receivers: string[];
  now?: () => number;
}

export type ReportPeriod = 'daily' | 'weekly';

/** The queue report jobs run in. */
export const REPORTS_QUEUE = 'bulwark.reports';

/** Length of each period in ms. */
export const REPORT_PERIOD_MS: Readonly<Record<ReportPeriod, number>> = {
  daily: 86_400_000,
  weekly: 7 * 86_400_000,
};

const TOP_GROUPS = 10;

export type {
  ReportAlerts,
  ReportData,
  ReportErrorGroup,
  ReportErrors,
  ReportTraffic,
  ReportUptime,
} from './report-data.js';

/** A report over [`from`, `to`) (ms since the epoch); `text` is multi-line plain text. */
export interface Report {
  period: ReportPeriod;
  from: number;
  to: number;
  title: string;
  text: string;
  data: ReportData;
}

/**
 * Builds the report of the period ending at `to` (daily: 24 h, weekly: 7 days). Reads only; rejects
 * with the store's error, or `BWK_ERR_ALERTS_CONFIG` for an unknown period. "Firing now" is as of
 * the call, not as of `to`.
 */
export async function buildReport(period: ReportPeriod, to: number, opts: ReportOptions): Promise<Report> {
  const length = (REPORT_PERIOD_MS as Partial<Record<string, number>>)[period];
  if (length === undefined)
    throw bulwarkError('BWK_ERR_ALERTS_CONFIG', {
      summary: `report period must be daily or weekly, got ${JSON.stringify(period)}`,
    });
  const from = to - length;
  const db = opts.store.db;
  const [errors, alerts, metrics] = await Promise.all([
    opts.errors === undefined ? undefined : errorsPart(db, from, to),
    alertsPart(db, from, to),
    opts.history === undefined ? undefined : trafficPart(opts.history, from, to),
  ]);
  const data: ReportData = { service: opts.serviceId, alerts };
  if (errors !== undefined) data.errors = errors;
  if (metrics !== undefined) Object.assign(data, metrics);
  const name = period === 'daily' ? 'Daily' : 'Weekly';
  const counts = [
    ...(data.traffic === undefined ? [] : [plural(data.traffic.requests, 'request')]),
    ...(errors === undefined ? [] : [plural(errors.seen, 'error group')]),
    plural(alerts.firings, 'alert'),
  ];
  const title = `${name} report for ${opts.serviceId}: ${counts.join(', ')}`;
  return {
    period,
    from,
    to,
    title,
    text: reportText(`${name} report for ${opts.serviceId}`, from, to, data),
    data,
  };
}

/**
 * Adds the report to the alert outbox, one notification per receiver under the idempotency key
 * `report:<period>:<YYYY-MM-DD of to, UTC>:<receiver>`, in one transaction. A key already present is
 * left as it is, so building and enqueueing the same day's report again (a retry, another instance)
 * adds nothing. Delivery is the alert engine's: once per receiver, retried like any notification.
 */
export async function enqueueReport(
  report: Report,
  opts: Pick<ReportOptions, 'store' | 'serviceId' | 'receivers' | 'now'>,
): Promise<void> {
  const day = new Date(report.to).toISOString().slice(0, 10);
  const rule = `bulwark.report.${report.period}`;
  const entries = [...new Set(opts.receivers)].map((receiver) => {
    const key = `report:${report.period}:${day}:${receiver}`;
    const notification: Notification = {
      key,
      rule,
      status: 'firing',
      severity: 'info',
      summary: report.title,
      labels: { alertname: rule, severity: 'info', report: report.period },
      startsAt: report.from,
      endsAt: report.to,
      service: opts.serviceId,
      details: report.text,
    };
    return { key, receiver, payload: JSON.stringify(notification) };
  });
  const now = (opts.now ?? Date.now)();
  await opts.store.db.transaction().execute((trx) => AlertOutbox.enqueue(trx, entries, now));
}

/** The data of a report job: the period, and optionally its end (default the occurrence or now). */
export interface ReportJob {
  period: ReportPeriod;
  to?: number;
}

/**
 * Runs report jobs of {@link REPORTS_QUEUE} in this process and schedules them: `daily` (cron,
 * default `0 8 * * *`) and `weekly` (default `0 8 * * 1`), in `tz` (default UTC); `false` removes a
 * schedule. The queue adds each occurrence once across instances, and the outbox key dedupes the
 * rest, so a report goes out once per receiver. A failing job is retried by the queue.
 */
export async function scheduleReports(
  queues: JobQueue,
  opts: ReportOptions & { daily?: string | false; weekly?: string | false; tz?: string },
): Promise<void> {
  queues.process<ReportJob>(REPORTS_QUEUE, async (job) => runReportJob(job, opts));
  const schedules = { daily: opts.daily ?? '0 8 * * *', weekly: opts.weekly ?? '0 8 * * 1' };
  for (const period of ['daily', 'weekly'] as const) {
    const cron = schedules[period];
    if (cron === false) await queues.unrepeat(REPORTS_QUEUE, period);
    else
      await queues.repeat<ReportJob>(
        REPORTS_QUEUE,
        period,
        { period },
        { cron, ...(opts.tz === undefined ? {} : { tz: opts.tz }) },
      );
  }
}

async function runReportJob(job: Job<ReportJob>, opts: ReportOptions): Promise<void> {
  // A scheduled occurrence ends its period at the occurrence (`repeat:<name>:<ms>`), not when it ran.
  const occurrence = /^repeat:[^:]+:(\d+)$/.exec(job.id)?.[1];
  const to = job.data.to ?? (occurrence === undefined ? (opts.now ?? Date.now)() : Number(occurrence));
  const report = await buildReport(job.data.period, to, opts);
  await enqueueReport(report, opts);
  opts.logger.info(
    { period: report.period, from: report.from, to: report.to, receivers: opts.receivers.length },
    `alerts: ${report.period} report enqueued`,
  );
}

async function errorsPart(db: Kysely<StoreTables>, from: number, to: number): Promise<ReportErrors> {
  const seen = db
    .selectFrom('bulwark_error_groups')
    .where('last_seen', '>=', from)
    .where('last_seen', '<', to);
  const [rows, totals, states] = await Promise.all([
    seen.selectAll().orderBy('count', 'desc').orderBy('last_seen', 'desc').limit(TOP_GROUPS).execute(),
    seen
      .select((eb) => [
        eb.fn.countAll().as('seen'),
        sql<number>`coalesce(sum(case when first_seen >= ${from} then 1 else 0 end), 0)`.as('new'),
        sql<number>`coalesce(sum(case when first_seen < ${from} and regressions > 0 then 1 else 0 end), 0)`.as(
          'regressed',
        ),
      ])
      .executeTakeFirst(),
    db
      .selectFrom('bulwark_error_groups')
      .select((eb) => ['state', eb.fn.countAll().as('n')])
      .groupBy('state')
      .execute(),
  ]);
  const byState: Record<ErrorState, number> = { open: 0, resolved: 0, ignored: 0 };
  for (const row of states) if (row.state in byState) byState[row.state as ErrorState] = Number(row.n);
  return {
    seen: Number(totals?.seen ?? 0),
    new: Number(totals?.new ?? 0),
    regressed: Number(totals?.regressed ?? 0),
    top: rows.map((row) => ({
      fingerprint: row.fingerprint,
      type: row.type,
      message: row.message,
      culprit: row.culprit,
      state: row.state as ErrorState,
      count: Number(row.count),
      firstSeen: Number(row.first_seen),
      lastSeen: Number(row.last_seen),
      new: Number(row.first_seen) >= from,
      regressed: Number(row.first_seen) < from && Number(row.regressions) > 0,
    })),
    states: byState,
  };
}

async function alertsPart(db: Kysely<StoreTables>, from: number, to: number): Promise<ReportAlerts> {
  const [rows, firing] = await Promise.all([
    db
      .selectFrom('bulwark_alert_outbox')
      .select(['key', 'receiver', 'payload'])
      .where('created_at', '>=', from)
      .where('created_at', '<', to)
      .execute(),
    db
      .selectFrom('bulwark_alerts')
      .select(['rule', 'since'])
      .where('state', '=', 'firing')
      .orderBy('since')
      .execute(),
  ]);
  const fired = new Map<string, Set<string>>();
  const resolved = new Set<string>();
  for (const row of rows) {
    const n = parsePayload(row.payload);
    if (n === undefined || n.rule.startsWith('bulwark.report.') || !row.key.startsWith(`${n.rule}:`))
      continue;
    // `<rule>:<transition>:<receiver>` is a transition; a follow-up has a part before the receiver.
    const rest = row.key.slice(n.rule.length + 1);
    const colon = rest.indexOf(':');
    if (colon === -1 || rest.slice(colon + 1) !== row.receiver) continue;
    const transition = `${n.rule}:${rest.slice(0, colon)}`;
    if (n.status === 'resolved') resolved.add(transition);
    else fired.set(n.rule, (fired.get(n.rule) ?? new Set()).add(transition));
  }
  const byRule = [...fired]
    .map(([rule, transitions]) => ({ rule, firings: transitions.size }))
    .sort((a, b) => b.firings - a.firings || (a.rule < b.rule ? -1 : 1));
  return {
    firings: byRule.reduce((sum, r) => sum + r.firings, 0),
    resolved: resolved.size,
    byRule,
    firingNow: firing.map((row) => ({ rule: row.rule, since: Number(row.since) })),
  };
}

function parsePayload(payload: string): Pick<Notification, 'rule' | 'status'> | undefined {
  try {
    const n = JSON.parse(payload) as Partial<Notification>;
    return typeof n.rule === 'string' ? { rule: n.rule, status: n.status ?? 'firing' } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Traffic and uptime from the history, at the coarsest tier whose retention still covers `from` and
 * whose buckets fit in the period. Buckets starting in [from, to) count; each sample of a rate
 * stands for one sampling interval, so totals stay right across gaps and across instances.
 */
async function trafficPart(
  history: MetricsHistory,
  from: number,
  to: number,
): Promise<{ traffic: ReportTraffic; uptime: ReportUptime }> {
  const now = history.now();
  const tier = history.tiers
    .filter((t) => now - t.retentionMs <= from && t.resolutionS * 1000 <= to - from)
    .at(-1);
  let resolutionS = tier?.resolutionS;
  /** Points of `name` (any `instance`, and `route="*"` when asked), one array per series. */
  const read = async (name: string, route?: string): Promise<HistoryPoint[][]> => {
    const names = (await history.seriesNames(name)).filter((series) => {
      const parsed = parseSeriesName(series);
      if (parsed?.name !== name || parsed.labels['route'] !== route) return false;
      return Object.keys(parsed.labels).every((label) => label === 'instance' || label === 'route');
    });
    const results = await Promise.all(names.map((series) => history.query(series, from, to, resolutionS)));
    resolutionS ??= results[0]?.resolutionS;
    return results.map((r) => r.points.filter((p) => p.at >= from && p.at < to));
  };
  const [requests, errors, ratio, p99, alive] = await Promise.all([
    read('http.requests_per_s', '*'),
    read('http.errors_per_s', '*'),
    read('http.error_ratio', '*'),
    read('http.latency_p99_ms', '*'),
    read('process.rss_bytes'),
  ]);
  const intervalS = history.intervalMs / 1000;
  const total = (series: HistoryPoint[][]) =>
    series.flat().reduce((sum, p) => sum + p.avg * p.count * intervalS, 0);
  const latency = p99.flat();
  // Samples per bucket, capped at the bucket's intervals (instances merged into one series add up).
  const perBucket = new Map<number, number>();
  const cap = ((resolutionS ?? intervalS) * 1000) / history.intervalMs;
  for (const p of alive.flat())
    perBucket.set(p.at, Math.min(cap, Math.max(perBucket.get(p.at) ?? 0, p.count)));
  const samples = [...perBucket.values()].reduce((a, b) => a + b, 0);
  return {
    traffic: {
      requests: total(requests),
      errors: total(errors),
      errorRatio: weightedMean(ratio.flat()),
      latencyP99MaxMs: latency.length === 0 ? undefined : Math.max(...latency.map((p) => p.max)),
      latencyP99MeanMs: weightedMean(latency),
      resolutionS,
    },
    uptime: {
      ratio: Math.min(1, (samples * history.intervalMs) / (to - from)),
      samples,
      intervalMs: history.intervalMs,
    },
  };
}

function weightedMean(points: HistoryPoint[]): number | undefined {
  const count = points.reduce((sum, p) => sum + p.count, 0);
  return count === 0 ? undefined : points.reduce((sum, p) => sum + p.avg * p.count, 0) / count;
}

/** `1 234` (digits grouped by spaces), rounded. */

// Spin's reports to the alert receivers (issue item 4): a daily queue-health report and a weekly
// match-rate report, as repeatable jobs of Bulwark's queue (each occurrence run once across
// instances) sent through the alert outbox (`bulwark.alerts.report`: once per day and receiver,
// however often the job is retried).
import type { Bulwark, Job } from 'bulwark';
import { formatDuration } from './domain/wording.js';
import { GENDERS, type Gender } from './domain/types.js';
import type { QueueStats } from './stats.js';
import type { WaitSummary } from './stats-windows.js';

export const REPORTS_QUEUE = 'spin.reports';

export type ReportPeriod = 'daily' | 'weekly';

/** A report job: its period, and optionally the end of the period (default the occurrence or now). */
export interface ReportJob {
  period: ReportPeriod;
  to?: number;
}

/** When the reports go out (cron, UTC): daily at 08:00, weekly on Mondays at 08:00. */
const SCHEDULES: Record<ReportPeriod, string> = { daily: '0 8 * * *', weekly: '0 8 * * 1' };

/** Runs report jobs in this process and schedules both reports. */
export async function scheduleSpinReports(bulwark: Bulwark, stats: QueueStats): Promise<void> {
  bulwark.queues.process<ReportJob>(REPORTS_QUEUE, (job) => runReport(bulwark, stats, job));
  for (const period of ['daily', 'weekly'] as const)
    await bulwark.queues.repeat<ReportJob>(REPORTS_QUEUE, period, { period }, { cron: SCHEDULES[period] });
}

async function runReport(bulwark: Bulwark, stats: QueueStats, job: Job<ReportJob>): Promise<void> {
  const occurrence = /^repeat:[^:]+:(\d+)$/.exec(job.id)?.[1];
  const to = job.data.to ?? (occurrence === undefined ? Date.now() : Number(occurrence));
  if (bulwark.alerts === undefined) {
    bulwark.logger.info({ period: job.data.period }, 'spin: no alerting configured, the report is not sent');
    return;
  }
  const report = await buildReport(stats, job.data.period);
  const day = new Date(to).toISOString().slice(0, 10);
  const receivers = await bulwark.alerts.report({
    key: `spin.${job.data.period}:${day}`,
    title: `${report.title}, ${day}`,
    text: report.text,
  });
  bulwark.logger.info({ period: job.data.period, receivers: receivers.length }, 'spin: report enqueued');
}

/** The title and plain-text body of a report, from the queue statistics now. */
export async function buildReport(
  stats: QueueStats,
  period: ReportPeriod,
): Promise<{ title: string; text: string }> {
  const admin = await stats.admin();
  const window = admin.windows[period === 'daily' ? '24h' : '7d'];
  const span = period === 'daily' ? 'last 24 hours' : 'last 7 days';
  const lines = [
    `Waiting now: ${admin.waiting.total} (${GENDERS.map((g) => `${plural(g)} ${admin.waiting.byGender[g]}`).join(', ')})`,
    `Matches in the ${span}: ${window.matches}${window.sampleEvery > 1 ? ` (waits from a sample of ${window.sampled})` : ''}`,
    ...GENDERS.map((g) => `  ${plural(g)}: ${summary(window.byGender[g])}`),
    `Match rate now: ${admin.matchRate.recent.toFixed(1)} a minute (the hour before: ${admin.matchRate.baseline.toFixed(1)})`,
  ];
  if (admin.recommendations.length > 0)
    lines.push('', 'Recommendations:', ...admin.recommendations.map((advice) => `- ${advice.text}`));
  return {
    title: period === 'daily' ? 'Spin queue health' : 'Spin match rate, week',
    text: lines.join('\n'),
  };
}

function plural(gender: Gender): string {
  return gender === 'man' ? 'men' : gender === 'woman' ? 'women' : 'nonbinary people';
}

function summary(s: WaitSummary): string {
  if (s.matched === 0) return 'no matches';
  const waits =
    s.avgWaitMs === null || s.p90WaitMs === null
      ? ''
      : `, wait average ${formatDuration(s.avgWaitMs)}, p90 ${formatDuration(s.p90WaitMs)}`;
  const success = s.successRate === null ? '' : `, ${Math.round(s.successRate * 100)}% both liked`;
  return `${s.matched} matched${waits}${success}`;
}

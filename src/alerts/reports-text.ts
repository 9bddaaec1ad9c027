/** The plain-text body of a report (see reports.ts). */
import type { ReportData } from './report-data.js';

export function formatCount(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

export function plural(n: number, noun: string): string {
  return `${formatCount(n)} ${noun}${Math.round(n) === 1 ? '' : 's'}`;
}

/** `2026-11-18 08:00 UTC`. */
function formatTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const percent = (ratio: number): string => `${(ratio * 100).toFixed(2)} %`;
const millis = (ms: number): string => `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;

export function reportText(heading: string, from: number, to: number, data: ReportData): string {
  const lines = [heading, `Period: ${formatTime(from)} to ${formatTime(to)}`];
  const { traffic, uptime, errors, alerts } = data;
  if (traffic !== undefined && uptime !== undefined) {
    lines.push('', 'Traffic');
    if (uptime.samples === 0) lines.push('  No metrics history samples in the period.');
    else {
      const ratio =
        traffic.errorRatio === undefined ? '' : ` (mean error ratio ${percent(traffic.errorRatio)})`;
      lines.push(
        `  Requests: ${formatCount(traffic.requests)}`,
        `  5xx responses: ${formatCount(traffic.errors)}${ratio}`,
      );
      if (traffic.latencyP99MaxMs !== undefined && traffic.latencyP99MeanMs !== undefined)
        lines.push(
          `  Latency p99: max ${millis(traffic.latencyP99MaxMs)}, mean ${millis(traffic.latencyP99MeanMs)}`,
        );
    }
    lines.push(
      `  Uptime: ${percent(uptime.ratio)} (share of the period with metrics history samples, an approximation of the service being up)`,
    );
  }
  if (errors !== undefined) {
    const { open, resolved, ignored } = errors.states;
    lines.push(
      '',
      'Errors',
      `  ${plural(errors.seen, 'group')} seen (${errors.new} new, ${errors.regressed} regressed); now ${open} open, ${resolved} resolved, ${ignored} ignored`,
      ...errors.top.map((g, i) => {
        const flags = [g.new ? 'new' : '', g.regressed ? 'regressed' : '', g.state === 'open' ? '' : g.state];
        const notes = flags.filter((f) => f !== '').join(', ');
        return `  ${i + 1}. ${g.type}: ${g.message} (${g.culprit}): ${formatCount(g.count)} in total${notes === '' ? '' : `, ${notes}`}`;
      }),
    );
  }
  const rules = alerts.byRule.map((r) => `${r.rule} ${r.firings}`).join(', ');
  lines.push(
    '',
    'Alerts',
    `  ${plural(alerts.firings, 'firing')}${rules === '' ? '' : ` (${rules})`}, ${alerts.resolved} resolved`,
    alerts.firingNow.length === 0
      ? '  Firing now: none'
      : `  Firing now: ${alerts.firingNow.map((a) => `${a.rule} since ${formatTime(a.since)}`).join(', ')}`,
  );
  return lines.join('\n');
}

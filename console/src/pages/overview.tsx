// The overview: what needs attention, worst first, each with a one-word verdict and a link; and the
// key charts of the last hour, its deploys, config and flag changes, switches and restarts marked.
import { api } from '../api.js';
import { useAnnotations } from '../annotations.js';
import { SeriesChart, type Unit } from '../chart.js';
import { useLive } from '../live.js';
import type { Route } from '../router.js';
import { Badge, Link, Loading, PageHeader, useLoad, type Tone } from '../ui.js';

interface AttentionItem {
  severity: 'critical' | 'warning' | 'info';
  verdict: string;
  title: string;
  detail?: string;
  link: string;
}

interface Overview {
  attention: AttentionItem[];
  generatedAt: number | string;
}

const TONE: Record<AttentionItem['severity'], Tone> = { critical: 'bad', warning: 'warn', info: 'muted' };
const HOUR_MS = 3_600_000;

/** The key charts of the last hour: request rate, error ratio, p99 latency, memory. */
const KEY_CHARTS: { title: string; series: string; unit: Unit }[] = [
  { title: 'Requests', series: 'http.requests_per_s{route="*"}', unit: 'per_s' },
  { title: 'Error ratio (5xx)', series: 'http.error_ratio{route="*"}', unit: 'ratio' },
  { title: 'Latency p99', series: 'http.latency_p99_ms{route="*"}', unit: 'ms' },
  { title: 'Memory (RSS)', series: 'process.rss_bytes', unit: 'bytes' },
];

export function OverviewPage(_props: { route: Route }) {
  const loaded = useLoad((signal) => api<Overview>('GET', '/overview', undefined, signal), 'overview');
  useLive(['dependencies', 'alerts', 'queues', 'errors', 'instances'], loaded.reload);
  // Whole minutes, so the charts do not refetch on every render.
  const to = Math.ceil(Date.now() / 60_000) * 60_000;
  const from = to - HOUR_MS;
  const marks = useAnnotations(from, to, true).data?.annotations;
  return (
    <section>
      <PageHeader title="Overview" />
      <h2>Needs attention</h2>
      <Loading loaded={loaded}>
        {(overview) =>
          overview.attention.length === 0 ? (
            <p class="all-clear">
              <Badge tone="ok">clear</Badge> Nothing needs attention: every dependency on its primary, no
              alert firing, no dead or stuck job, no new error.
            </p>
          ) : (
            <ul class="attention">
              {overview.attention.map((item, i) => (
                <li key={i} class={item.severity}>
                  <Badge tone={TONE[item.severity]}>{item.verdict}</Badge>{' '}
                  <Link to={item.link.replace(/^\/admin/, '')}>{item.title}</Link>
                  {item.detail && <span class="muted"> — {item.detail}</span>}
                </li>
              ))}
            </ul>
          )
        }
      </Loading>
      <h2>Last hour</h2>
      <div class="charts">
        {KEY_CHARTS.map((chart) => (
          <SeriesChart key={chart.series} {...chart} from={from} to={to} annotations={marks} />
        ))}
      </div>
    </section>
  );
}

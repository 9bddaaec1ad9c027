// Spin's queue dashboard for admins (/dashboard, linked from the admin console): who waits now by
// gender (every 5 s), the queue's health and matching pace, what to do about it (recommendations),
// the alerts firing, waits and success by gender over 1 h / 24 h / 7 d, the estimate each group
// would be shown, and the trends over the range picked. Its data comes from
// /admin/api/spin/queue-stats, which the console's session cookie (Path=/admin) reaches: signed out,
// the page sends the admin to the console's sign-in and back.
import { useState } from 'preact/hooks';
import { api, ApiError, duration, GENDERS, type Gender, type QueueStatus } from './api.js';
import { RangePicker, TrendChart, type Line, type Range, type Trends } from './chart.js';
import { byGender, Distribution, usePolled } from './status.js';
import type { Fail } from './ui.js';
import { PEOPLE } from './waiting.js';

interface Summary {
  matched: number;
  avgWaitMs: number | null;
  p90WaitMs: number | null;
  settled: number;
  successRate: number | null;
}

interface AdminStats {
  waiting: { total: number; byGender: Record<Gender, number>; byGroup: Record<string, number> };
  windows: Record<Range, { matches: number; sampleEvery: number; byGender: Record<Gender, Summary> }>;
  estimates: {
    group: string;
    waiting: number;
    estimate: { estimateKnown: boolean; p50Ms?: number | null; p90Ms?: number | null; sentence: string };
  }[];
  matchRate: { recent: number; baseline: number; ratio: number | null };
  trends: Trends | null;
  recommendations: { code: string; text: string }[];
}

interface Alert {
  id: string;
  severity: string;
  summary: string;
  since: number;
}

const REFRESH_MS = 5_000;
const IMBALANCE: Line[] = [{ label: 'men per woman', series: 'app.spin.men_per_woman' }];
const PACE: Line[] = [
  { label: 'matches', series: 'app.spin.matches_per_min' },
  { label: 'men seeking women arriving', series: 'app.spin.arrivals_per_min{gender="man",seeking="woman"}' },
  { label: 'women seeking men arriving', series: 'app.spin.arrivals_per_min{gender="woman",seeking="man"}' },
];
const SUCCESS: Line[] = [{ label: 'both liked', series: 'app.spin.match_success_ratio' }];
const WAITING = byGender('waiting');
const WAITS = byGender('wait_p90_ms');

/** `man:woman` → "men seeking women". */
function groupName(key: string): string {
  const [gender, seeking] = key.split(':');
  const seeks = (seeking ?? '').split(',').map((g) => PEOPLE[g as Gender] ?? g);
  return `${PEOPLE[gender as Gender] ?? gender} seeking ${seeks.join(' or ')}`;
}

const percent = (ratio: number | null) => (ratio === null ? '—' : `${Math.round(ratio * 100)}%`);

export function DashboardPage({ fail }: { fail: Fail }) {
  const [range, setRange] = useState<Range>('24h');
  const [signedOut, setSignedOut] = useState(false);
  // A 401 is not a failure to show: it asks for the console's sign-in.
  const quiet: Fail = (error, retry) => {
    if (error instanceof ApiError && error.status === 401) setSignedOut(true);
    else fail(error, retry);
  };
  const stats = usePolled(
    () => api<AdminStats>('GET', `/admin/api/spin/queue-stats?range=${range}`),
    REFRESH_MS,
    quiet,
    [range],
  );
  const alerts = usePolled(
    () => api<{ rules: Alert[] }>('GET', '/admin/api/alerts?state=firing&limit=20').then((r) => r.rules),
    REFRESH_MS * 2,
    quiet,
    [],
  );
  const health = usePolled(() => api<QueueStatus>('GET', '/api/queue-status'), REFRESH_MS * 2, fail, []);
  if (signedOut)
    return (
      <>
        <h1>Spin: queue dashboard</h1>
        <section class="card" aria-label="Sign in">
          <p>The dashboard is for Spin's admins: sign in to the admin console first.</p>
          <p>
            <a href={`/admin/login?return=${encodeURIComponent('/dashboard')}`}>
              Sign in to the admin console
            </a>
          </p>
        </section>
      </>
    );
  if (stats === undefined)
    return (
      <>
        <h1>Spin: queue dashboard</h1>
        <p aria-busy="true">Loading…</p>
      </>
    );
  const rate = stats.matchRate;
  return (
    <div class="wide">
      <h1>Spin: queue dashboard</h1>
      <p>
        <a href="/admin/">Admin console</a> · <a href="/status">Public status</a>
      </p>
      <div class="grid">
        <section aria-label="Waiting now" class="card">
          <h2>Waiting now: {stats.waiting.total}</h2>
          <Distribution byGender={stats.waiting.byGender} total={stats.waiting.total} />
        </section>
        <section aria-label="Queue health" class={`card health-${health?.health.status ?? 'pass'}`}>
          <h2>Queue health</h2>
          {health !== undefined && <p>{health.health.summary}</p>}
          <p>
            Matching {rate.recent.toFixed(1)}/min over the last 5 minutes, {rate.baseline.toFixed(1)}/min over
            the hour before
            {rate.ratio === null ? '.' : ` (${percent(rate.ratio)} of its pace).`}
          </p>
        </section>
      </div>
      <section aria-label="Recommendations" class="card">
        <h2>Recommendations</h2>
        {stats.recommendations.length === 0 ? (
          <p>Nothing to act on: the queue is balanced and moving.</p>
        ) : (
          <ul>
            {stats.recommendations.map((r) => (
              <li key={r.code}>{r.text}</li>
            ))}
          </ul>
        )}
      </section>
      <section aria-label="Alerts" class="card">
        <h2>Alerts firing</h2>
        {alerts === undefined || alerts.length === 0 ? (
          <p>None.</p>
        ) : (
          <ul>
            {alerts.map((a) => (
              <li key={a.id}>
                <strong>{a.severity}</strong> {a.summary} (for {duration(Date.now() - a.since)}){' '}
                <a href={`/admin/alerts?rule=${encodeURIComponent(a.id)}`}>in the console</a>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-label="Waits and success" class="card">
        <h2>Waits and success by gender</h2>
        {/* Focusable, so that a keyboard can scroll it sideways on a narrow screen. */}
        <div class="scroll" tabIndex={0} role="group" aria-label="The table, scrolls sideways">
          <table>
            <thead>
              <tr>
                <th scope="col">Who</th>
                <th scope="col">Over</th>
                <th scope="col">Matched</th>
                <th scope="col">Average wait</th>
                <th scope="col">p90 wait</th>
                <th scope="col">Both liked</th>
              </tr>
            </thead>
            <tbody>
              {GENDERS.flatMap((g) =>
                (['1h', '24h', '7d'] as const).map((w) => {
                  const s = stats.windows[w].byGender[g];
                  return (
                    <tr key={`${g}${w}`}>
                      <th scope="row">{PEOPLE[g]}</th>
                      <td>
                        {w}
                        {stats.windows[w].sampleEvery > 1 ? ' (sampled)' : ''}
                      </td>
                      <td>{s.matched}</td>
                      <td>{s.avgWaitMs === null ? '—' : duration(s.avgWaitMs)}</td>
                      <td>{s.p90WaitMs === null ? '—' : duration(s.p90WaitMs)}</td>
                      <td>{percent(s.successRate)}</td>
                    </tr>
                  );
                }),
              )}
            </tbody>
          </table>
        </div>
      </section>
      <section aria-label="Estimates" class="card">
        <h2>What a newcomer is told</h2>
        <ul>
          {stats.estimates.map((e) => (
            <li key={e.group}>
              <strong>{groupName(e.group)}</strong> ({e.waiting} waiting): {e.estimate.sentence}
            </li>
          ))}
        </ul>
      </section>
      <section aria-label="Trends" class="card">
        <h2>Trends</h2>
        <RangePicker range={range} onPick={setRange} />
        {stats.trends === null ? (
          <p class="muted">No trends: this server keeps no metrics history.</p>
        ) : (
          <div class="grid">
            <TrendChart title="Who waits" trends={stats.trends} lines={WAITING} unit="count" />
            <TrendChart title="p90 wait" trends={stats.trends} lines={WAITS} unit="ms" />
            <TrendChart
              title="Arrivals and matches a minute"
              trends={stats.trends}
              lines={PACE}
              unit="per_min"
            />
            <TrendChart title="Men per woman arriving" trends={stats.trends} lines={IMBALANCE} unit="times" />
            <TrendChart title="Liked each other" trends={stats.trends} lines={SUCCESS} unit="ratio" />
          </div>
        )}
      </section>
    </div>
  );
}

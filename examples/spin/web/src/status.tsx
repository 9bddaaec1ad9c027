// Spin's public queue status (/status): who waits now by gender, matches, success and waits over the
// last day, the service's health, and the trends over 1 h / 24 h / 7 d, all anonymised by the
// server (counts rounded, waits shown only over enough matches). Refreshed every 10 s.
import { useEffect, useState } from 'preact/hooks';
import { api, duration, GENDERS, type QueueStatus } from './api.js';
import { RangePicker, TrendChart, type Line, type Range, type Trends } from './chart.js';
import type { Fail } from './ui.js';
import { PEOPLE } from './waiting.js';

const REFRESH_MS = 10_000;
const HEALTH_WORD = { pass: 'Normal', warn: 'Degraded', fail: 'Having trouble' } as const;

/** `app.spin.<name>{gender="…"}` for each gender, labelled by its people. */
export const byGender = (name: string): Line[] =>
  GENDERS.map((g) => ({ label: PEOPLE[g], series: `app.spin.${name}{gender="${g}"}` }));

const WAITING = byGender('waiting');
const WAITS = byGender('wait_p90_ms');
const MATCHES: Line[] = [{ label: 'matches', series: 'app.spin.matches_per_min' }];
const SUCCESS: Line[] = [{ label: 'both liked', series: 'app.spin.match_success_ratio' }];

/** Reads `load` now and every `everyMs` while the page is open: the latest answer (undefined before the first). */
export function usePolled<T>(
  load: () => Promise<T>,
  everyMs: number,
  fail: Fail,
  deps: unknown[],
): T | undefined {
  const [value, setValue] = useState<T | undefined>(undefined);
  useEffect(() => {
    let stopped = false;
    const read = () =>
      load().then(
        (v) => !stopped && setValue(v),
        (error: unknown) => !stopped && fail(error, () => void read()),
      );
    void read();
    const timer = setInterval(() => void read(), everyMs);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, deps);
  return value;
}

/** Who waits now, by gender: a bar of shares with the numbers written out. */
export function Distribution({
  byGender: counts,
  total,
}: {
  byGender: Record<string, number>;
  total: number;
}) {
  return (
    <>
      <div class="bar" aria-hidden="true">
        {GENDERS.map((g) =>
          total === 0 || counts[g] === 0 ? null : (
            <span key={g} class={`bar-${g}`} style={{ width: `${(100 * (counts[g] ?? 0)) / total}%` }} />
          ),
        )}
      </div>
      <ul class="legend">
        {GENDERS.map((g) => (
          <li key={g}>
            <span class={`dot bar-${g}`} aria-hidden="true" /> {counts[g] ?? 0} {PEOPLE[g]}
          </li>
        ))}
      </ul>
    </>
  );
}

export function StatusPage({ fail }: { fail: Fail }) {
  const [range, setRange] = useState<Range>('24h');
  const status = usePolled(() => api<QueueStatus>('GET', '/api/queue-status'), REFRESH_MS, fail, []);
  const trends = usePolled(
    () => api<Trends | null>('GET', `/api/queue-status/trends?range=${range}`),
    60_000,
    fail,
    [range],
  );
  return (
    <>
      <h1>Spin: queue status</h1>
      <p>
        <a href="/">Join the queue</a>
      </p>
      {status === undefined ? (
        <p aria-busy="true">Loading…</p>
      ) : (
        <>
          <section aria-label="Health" class={`card health-${status.health.status}`}>
            <h2>{HEALTH_WORD[status.health.status]}</h2>
            <p>{status.health.summary}</p>
          </section>
          <section aria-label="Waiting now" class="card">
            <h2>Waiting now: about {status.waiting.total}</h2>
            <Distribution byGender={status.waiting.byGender} total={status.waiting.total} />
            <p class="muted">Counts are rounded to 5, so one or two people show as 0.</p>
          </section>
          <section aria-label="The last 24 hours" class="card">
            <h2>The last 24 hours</h2>
            <p>
              About {status.last24h.matches} matches;{' '}
              {status.last24h.successRate === null
                ? 'too few settled yet to tell how many liked each other.'
                : `${Math.round(status.last24h.successRate * 100)}% of them liked each other.`}
            </p>
            <table>
              <thead>
                <tr>
                  <th scope="col">Who</th>
                  <th scope="col">Average wait</th>
                  <th scope="col">9 in 10 within</th>
                </tr>
              </thead>
              <tbody>
                {GENDERS.map((g) => {
                  const w = status.last24h.waits[g];
                  return (
                    <tr key={g}>
                      <th scope="row">{PEOPLE[g]}</th>
                      <td>{w === null ? 'too few matched' : duration(w.avgMs)}</td>
                      <td>{w === null ? '—' : duration(w.p90Ms)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </section>
        </>
      )}
      <section aria-label="Trends" class="card">
        <h2>Trends</h2>
        <RangePicker range={range} onPick={setRange} />
        {trends === undefined ? (
          <p aria-busy="true">Loading…</p>
        ) : trends === null ? (
          <p class="muted">No trends: this server keeps no metrics history.</p>
        ) : (
          <>
            <TrendChart title="Who waits" trends={trends} lines={WAITING} unit="count" />
            <TrendChart title="Wait, 9 in 10 within" trends={trends} lines={WAITS} unit="ms" />
            <TrendChart title="Matches a minute" trends={trends} lines={MATCHES} unit="per_min" />
            <TrendChart title="Liked each other" trends={trends} lines={SUCCESS} unit="ratio" />
          </>
        )}
      </section>
    </>
  );
}

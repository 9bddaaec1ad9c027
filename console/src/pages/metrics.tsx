// Metrics: a chart of any series of the metrics history over 1 h / 24 h / 7 d / 30 d (or the range
// dragged on a chart), with a crosshair and the range's events marked on it and listed under it;
// series, range and zoom live in the URL.
import { api, withQuery } from '../api.js';
import { AnnotationEvents, useAnnotations } from '../annotations.js';
import { SeriesChart, type Unit } from '../chart.js';
import { setQuery, type Route } from '../router.js';
import { Link, Loading, PageHeader, SearchBox, useLoad } from '../ui.js';

export const RANGES = {
  '1h': 3_600_000,
  '24h': 86_400_000,
  '7d': 7 * 86_400_000,
  '30d': 30 * 86_400_000,
} as const;
type Range = keyof typeof RANGES;

/** How a series' values read, from its name's unit suffix. */
export function unitOf(series: string): Unit {
  const name = series.split('{')[0] ?? series;
  if (name.endsWith('_per_s')) return 'per_s';
  if (name.endsWith('_ratio')) return 'ratio';
  if (name.endsWith('_ms')) return 'ms';
  if (name.endsWith('_bytes')) return 'bytes';
  return 'count';
}

export function MetricsPage(props: { route: Route }) {
  const { query } = props.route;
  const series = query.get('series') ?? '';
  const prefix = query.get('prefix') ?? '';
  const range = (query.get('range') ?? '1h') as Range;
  const zoomFrom = Number(query.get('from'));
  const zoomTo = Number(query.get('to'));
  const zoomed = Number.isFinite(zoomFrom) && Number.isFinite(zoomTo) && zoomFrom > 0 && zoomTo > zoomFrom;
  // Whole minutes, so a render does not refetch.
  const now = Math.ceil(Date.now() / 60_000) * 60_000;
  const to = zoomed ? zoomTo : now;
  const from = zoomed ? zoomFrom : now - (RANGES[range] ?? RANGES['1h']);
  const path = withQuery('/metrics/series', { prefix });
  const names = useLoad((signal) => api<{ series: string[] }>('GET', path, undefined, signal), path);
  const events = useAnnotations(from, to, !zoomed);
  return (
    <section>
      <PageHeader title="Metrics">
        <div role="group" aria-label="Range" class="controls">
          {(Object.keys(RANGES) as Range[]).map((r) => (
            <button
              key={r}
              type="button"
              aria-pressed={!zoomed && r === range}
              onClick={() => setQuery({ range: r, from: null, to: null })}
            >
              {r}
            </button>
          ))}
          {zoomed && (
            <button type="button" onClick={() => setQuery({ from: null, to: null })}>
              Reset zoom
            </button>
          )}
        </div>
      </PageHeader>
      {series !== '' && (
        <SeriesChart
          title={series}
          series={series}
          unit={unitOf(series)}
          from={from}
          to={to}
          height={280}
          onZoom={(a, b) => setQuery({ from: Math.round(a), to: Math.round(b) })}
          annotations={events.data?.annotations}
        />
      )}
      <AnnotationEvents loaded={events} />
      <h2>Series</h2>
      <SearchBox
        label="Filter series by prefix (e.g. http.)"
        value={prefix}
        onChange={(value) => setQuery({ prefix: value })}
      />
      <Loading loaded={names}>
        {({ series: list }) =>
          list.length === 0 ? (
            <p class="muted">
              No series{prefix !== '' && <> starting with {prefix}</>} yet: the history samples every 10 s.
            </p>
          ) : (
            <ul class="series-list">
              {list.slice(0, 200).map((name) => (
                <li key={name}>
                  <Link to={withQuery('/metrics', { series: name, range, prefix })} current={name === series}>
                    {name}
                  </Link>
                </li>
              ))}
              {list.length > 200 && <li class="muted">… {list.length - 200} more: narrow the prefix.</li>}
            </ul>
          )
        }
      </Loading>
    </section>
  );
}

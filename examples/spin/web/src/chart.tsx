// Trend charts of Spin's pages: several series of one unit over a range, drawn with uPlot (loaded
// only by the pages that chart, so the waiting page stays small), each with a table of the same
// numbers for screen readers.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { duration } from './api.js';

/** Trends as the API answers them: per series, each bucket's start, mean and highest. */
export interface Trends {
  range: Range;
  fromMs: number;
  series: Record<string, { at: number; avg: number; max: number }[]>;
}

export type Range = '1h' | '24h' | '7d';
export const RANGES: readonly Range[] = ['1h', '24h', '7d'];

export type Unit = 'count' | 'per_min' | 'ratio' | 'ms' | 'times';

export function format(value: number | null | undefined, unit: Unit): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  if (unit === 'ms') return duration(value);
  if (unit === 'ratio') return `${Math.round(value * 100)}%`;
  if (unit === 'times') return `${value.toFixed(1)}:1`;
  if (unit === 'per_min') return `${value < 10 ? value.toFixed(1) : Math.round(value)}/min`;
  return String(Math.round(value));
}

/** One line of a chart: its label and the series it draws. */
export interface Line {
  label: string;
  series: string;
}

const COLOURS = ['#2a4bd7', '#c2410c', '#0f766e', '#7e22ce'];

/**
 * The lines' points on one time axis: every bucket start any of them has, in order, a line without
 * a point there drawn with a gap.
 */
function align(trends: Trends, lines: readonly Line[]): { at: number[]; values: (number | null)[][] } {
  const at = [...new Set(lines.flatMap((line) => (trends.series[line.series] ?? []).map((p) => p.at)))].sort(
    (a, b) => a - b,
  );
  const values = lines.map((line) => {
    const byAt = new Map((trends.series[line.series] ?? []).map((p) => [p.at, p.avg]));
    return at.map((t) => byAt.get(t) ?? null);
  });
  return { at, values };
}

const when = (at: number, range: Range) =>
  new Date(at).toLocaleString(undefined, {
    ...(range === '7d' ? { weekday: 'short' } : {}),
    hour: '2-digit',
    minute: '2-digit',
  });

export function TrendChart(props: { title: string; trends: Trends; lines: readonly Line[]; unit: Unit }) {
  const { at, values } = align(props.trends, props.lines);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (el === null || at.length === 0) return;
    const plot = new uPlot(
      {
        width: el.clientWidth,
        height: 180,
        legend: { show: true },
        // The whole range asked, whatever part of it has points (one point alone would span years).
        scales: { x: { time: true, range: [props.trends.fromMs / 1000, Date.now() / 1000] } },
        axes: [{}, { values: (_u, ticks) => ticks.map((v) => format(v, props.unit)), size: 60 }],
        series: [
          { value: (_u, v) => (v === null ? '—' : when(v * 1000, props.trends.range)) },
          ...props.lines.map((line, i) => ({
            label: line.label,
            stroke: COLOURS[i % COLOURS.length]!,
            width: 2,
            spanGaps: false,
            value: (_u: uPlot, v: number | null) => format(v, props.unit),
          })),
        ],
      },
      [at.map((t) => t / 1000), ...values],
      el,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: el.clientWidth, height: 180 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
    // Drawn anew when the series are (the server's trends change once a minute, at a new fromMs), not
    // at every poll of the page that holds them.
  }, [props.trends.range, props.trends.fromMs, props.lines, props.unit]);
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      {at.length === 0 ? (
        <p class="muted">No samples in this range yet.</p>
      ) : (
        <>
          <div ref={box} aria-hidden="true" />
          <details>
            <summary>The numbers</summary>
            <table>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  {props.lines.map((line) => (
                    <th scope="col" key={line.series}>
                      {line.label}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {at.map((t, row) => (
                  <tr key={t}>
                    <th scope="row">{when(t, props.trends.range)}</th>
                    {values.map((line, i) => (
                      <td key={i}>{format(line[row], props.unit)}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        </>
      )}
    </figure>
  );
}

/** The range buttons of a page's charts (the one shown pressed). */
export function RangePicker({ range, onPick }: { range: Range; onPick: (range: Range) => void }) {
  return (
    <p role="group" aria-label="Range of the charts" class="ranges">
      {RANGES.map((r) => (
        <button key={r} type="button" aria-pressed={r === range} onClick={() => onPick(r)}>
          {r}
        </button>
      ))}
    </p>
  );
}

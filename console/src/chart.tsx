// A time-series chart of one metrics-history series (uPlot: cheap to draw and to stream), with a
// crosshair and its value, drag to zoom, double-click to reset; the data as a table for screen readers.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api, withQuery } from './api.js';
import { AnnotationLegend, annotationPlugin, type Annotation } from './annotations.js';
import { Loading, useLoad } from './ui.js';

export interface HistoryPoint {
  at: number;
  count: number;
  avg: number;
  min: number;
  max: number;
  last: number;
}

interface History {
  series: string;
  resolutionS: number;
  points: HistoryPoint[];
}

/** How a value is shown on the axis and in the legend. */
export type Unit = 'per_s' | 'ratio' | 'ms' | 'bytes' | 'count';

export function format(value: number | null | undefined, unit: Unit): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  switch (unit) {
    case 'per_s':
      return `${value < 10 ? value.toFixed(2) : Math.round(value).toLocaleString()}/s`;
    case 'ratio':
      return `${(value * 100).toFixed(value < 0.01 ? 2 : 1)}%`;
    case 'ms':
      return `${value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString()} ms`;
    case 'bytes':
      return `${(value / 1024 / 1024).toFixed(value < 10 * 1024 * 1024 ? 1 : 0)} MiB`;
    case 'count':
      return Math.round(value).toLocaleString();
  }
}

export function SeriesChart(props: {
  title: string;
  series: string;
  unit: Unit;
  from: number;
  to: number;
  height?: number;
  /** Called with the range (ms) the user dragged across; without it the chart zooms in place. */
  onZoom?: (from: number, to: number) => void;
  /** Events to mark with vertical lines (deploys, config changes, ...). */
  annotations?: Annotation[] | undefined;
}) {
  const path = withQuery('/metrics/history', { series: props.series, from: props.from, to: props.to });
  const loaded = useLoad((signal) => api<History>('GET', path, undefined, signal), path);
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <Loading loaded={loaded}>
        {(history) =>
          history.points.length === 0 ? (
            <p class="muted empty-chart">No samples in this range yet.</p>
          ) : (
            <Plot
              history={history}
              unit={props.unit}
              title={props.title}
              height={props.height ?? 160}
              from={props.from}
              to={props.to}
              onZoom={props.onZoom}
              annotations={props.annotations ?? []}
            />
          )
        }
      </Loading>
    </figure>
  );
}

function Plot(props: {
  history: History;
  unit: Unit;
  title: string;
  height: number;
  from: number;
  to: number;
  onZoom?: ((from: number, to: number) => void) | undefined;
  annotations: Annotation[];
}) {
  const onZoom = useRef(props.onZoom);
  onZoom.current = props.onZoom;
  const marks = useRef(props.annotations);
  marks.current = props.annotations;
  const plotRef = useRef<uPlot | undefined>(undefined);
  const [hovered, setHovered] = useState<Annotation | undefined>();
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = ref.current;
    if (element === null) return;
    // The whole range asked for, not just the samples in it: a marker after the last sample shows.
    const points: { at: number; avg: number | null; max: number | null }[] = [...props.history.points];
    const first = points[0]?.at ?? props.to;
    if (props.from < first) points.unshift({ at: props.from, avg: null, max: null });
    if (props.to > (points.at(-1)?.at ?? props.to)) points.push({ at: props.to, avg: null, max: null });
    const data: uPlot.AlignedData = [
      points.map((p) => p.at / 1000),
      points.map((p) => p.avg),
      points.map((p) => p.max),
    ];
    const style = getComputedStyle(document.documentElement);
    const line = style.getPropertyValue('--chart-line').trim() || '#2563eb';
    const faint = style.getPropertyValue('--chart-faint').trim() || '#93c5fd';
    const axis = style.getPropertyValue('--fg-muted').trim() || '#666';
    const plot = new uPlot(
      {
        width: Math.max(240, element.clientWidth),
        height: props.height,
        cursor: { drag: { x: true, y: false, setScale: props.onZoom === undefined } },
        legend: { show: true, live: true },
        scales: { x: { time: true } },
        plugins: [annotationPlugin(() => marks.current, setHovered)],
        hooks: {
          setSelect: [
            (u) => {
              const zoom = onZoom.current;
              if (zoom === undefined || u.select.width < 2) return;
              const a = u.posToVal(u.select.left, 'x');
              const b = u.posToVal(u.select.left + u.select.width, 'x');
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
              zoom(a * 1000, b * 1000);
            },
          ],
        },
        axes: [
          { stroke: axis, grid: { stroke: 'rgba(127,127,127,0.15)' } },
          {
            stroke: axis,
            grid: { stroke: 'rgba(127,127,127,0.15)' },
            size: 70,
            values: (_u, ticks) => ticks.map((t) => format(t, props.unit)),
          },
        ],
        series: [
          {},
          { label: 'avg', stroke: line, width: 2, value: (_u, v) => format(v, props.unit) },
          { label: 'max', stroke: faint, width: 1, value: (_u, v) => format(v, props.unit) },
        ],
      },
      data,
      element,
    );
    const resize = new ResizeObserver(() =>
      plot.setSize({ width: Math.max(240, element.clientWidth), height: props.height }),
    );
    resize.observe(element);
    plotRef.current = plot;
    return () => {
      resize.disconnect();
      plot.destroy();
      plotRef.current = undefined;
    };
  }, [props.history, props.unit, props.height, props.from, props.to]);
  // New annotations are drawn on the plot as it is.
  useEffect(() => plotRef.current?.redraw(false, false), [props.annotations]);
  const last = props.history.points.at(-1);
  return (
    <>
      <div
        ref={ref}
        class="plot"
        role="img"
        aria-label={`${props.title}: latest ${format(last?.avg, props.unit)}`}
      />
      <AnnotationLegend marks={props.annotations} hovered={hovered} />
      <details class="sr-table">
        <summary>Data</summary>
        <table>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Average</th>
              <th scope="col">Max</th>
            </tr>
          </thead>
          <tbody>
            {props.history.points.slice(-20).map((p) => (
              <tr key={p.at}>
                <td>{new Date(p.at).toISOString()}</td>
                <td>{format(p.avg, props.unit)}</td>
                <td>{format(p.max, props.unit)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </>
  );
}

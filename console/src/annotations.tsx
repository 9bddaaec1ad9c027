// Chart annotations: deploys, config revisions, flag changes, dependency switches and restarts
// (GET /admin/api/annotations) as vertical markers on the uPlot charts, drawn on the canvas in the
// plot's draw hook (no inline style: the CSP forbids it), a legend naming the marker under the
// pointer, and a list of the range's events.
import type uPlot from 'uplot';
import { api, withQuery } from './api.js';
import { useLive } from './live.js';
import { Ago, Link, Loading, useLoad, type Loaded } from './ui.js';

export type AnnotationKind = 'deploy' | 'config' | 'flag' | 'dependency' | 'restart';

export interface Annotation {
  /** ms since the epoch. */
  at: number;
  kind: AnnotationKind;
  title: string;
  /** A console path under /admin. */
  link: string;
}

export interface AnnotationList {
  annotations: Annotation[];
  truncated: boolean;
  unavailable: string[];
}

export const KIND_NAMES: Record<AnnotationKind, string> = {
  deploy: 'Deploy',
  config: 'Config',
  flag: 'Flag',
  dependency: 'Dependency',
  restart: 'Restart',
};

/**
 * The annotations from `from` to `to` (ms), reloaded when a config, flag, dependency or instance
 * changes. `toNow`: the range ends now, so a reload reads up to the moment it is made (an event
 * after the page was drawn still shows).
 */
export function useAnnotations(from: number, to: number, toNow: boolean): Loaded<AnnotationList> {
  const key = withQuery('/annotations', { from, to: toNow ? 'now' : to });
  const loaded = useLoad(
    (signal) =>
      api<AnnotationList>(
        'GET',
        withQuery('/annotations', { from, to: toNow ? undefined : to }),
        undefined,
        signal,
      ),
    key,
  );
  useLive(['config', 'flags', 'dependencies', 'instances'], loaded.reload);
  return loaded;
}

/** The console path of an annotation's link (the API names them under /admin). */
function pathOf(link: string): string {
  return link.replace(/^\/admin(?=\/|$)/, '') || '/';
}

/**
 * A uPlot plugin drawing `marks()` as dashed vertical lines with a flag at the top, coloured by kind
 * (the CSS variables `--ann-<kind>`), and calling `onHover` with the marker nearest the pointer
 * (within 6 px), or undefined.
 */
export function annotationPlugin(
  marks: () => Annotation[],
  onHover: (mark: Annotation | undefined) => void,
): uPlot.Plugin {
  return {
    hooks: {
      draw: [
        (u) => {
          const list = marks();
          if (list.length === 0) return;
          const style = getComputedStyle(u.root);
          const ratio = window.devicePixelRatio || 1;
          const { ctx } = u;
          const { left, top, width, height } = u.bbox;
          ctx.save();
          ctx.lineWidth = ratio;
          ctx.setLineDash([4 * ratio, 3 * ratio]);
          for (const mark of list) {
            const x = Math.round(u.valToPos(mark.at / 1000, 'x', true));
            if (x < left || x > left + width) continue;
            const color = style.getPropertyValue(`--ann-${mark.kind}`).trim() || '#888';
            ctx.strokeStyle = color;
            ctx.fillStyle = color;
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + height);
            ctx.stroke();
            ctx.beginPath();
            ctx.moveTo(x - 5 * ratio, top);
            ctx.lineTo(x + 5 * ratio, top);
            ctx.lineTo(x, top + 7 * ratio);
            ctx.closePath();
            ctx.fill();
          }
          ctx.restore();
        },
      ],
      setCursor: [
        (u) => {
          const pointer = u.cursor.left;
          let nearest: Annotation | undefined;
          let distance = 6;
          if (pointer !== undefined && pointer >= 0)
            for (const mark of marks()) {
              const d = Math.abs(u.valToPos(mark.at / 1000, 'x') - pointer);
              if (d <= distance) {
                nearest = mark;
                distance = d;
              }
            }
          onHover(nearest);
        },
      ],
    },
  };
}

function Swatch(props: { kind: AnnotationKind }) {
  return <span class={`swatch ann-${props.kind}`} aria-hidden="true" />;
}

/** Under a chart: the kinds of markers shown, and the one the pointer is on. */
export function AnnotationLegend(props: { marks: Annotation[]; hovered: Annotation | undefined }) {
  const kinds = [...new Set(props.marks.map((mark) => mark.kind))];
  if (kinds.length === 0) return null;
  const { hovered } = props;
  return (
    <p class="annotation-legend small">
      {kinds.map((kind) => (
        <span key={kind} class="kind">
          <Swatch kind={kind} /> {KIND_NAMES[kind]}
        </span>
      ))}
      {hovered ? (
        <span class="hovered">
          <Swatch kind={hovered.kind} /> <Ago at={hovered.at} />: {hovered.title}
        </span>
      ) : (
        <span class="muted">Point at a marker to see what happened.</span>
      )}
    </p>
  );
}

/** The events of a range as a list, newest first, each with its kind, time and a link. */
export function AnnotationEvents(props: { loaded: Loaded<AnnotationList> }) {
  return (
    <section class="annotations" aria-labelledby="annotations-title">
      <h2 id="annotations-title">Events in this range</h2>
      <Loading loaded={props.loaded}>
        {(data) => (
          <>
            {data.unavailable.length > 0 && (
              <p class="muted">Could not read: {data.unavailable.join(', ')}. Their events are missing.</p>
            )}
            {data.annotations.length === 0 ? (
              <p class="muted">
                No deploy, config change, flag change, dependency switch or restart in this range.
              </p>
            ) : (
              <ol class="annotation-list">
                {[...data.annotations].reverse().map((mark) => (
                  <li key={`${mark.at}-${mark.kind}-${mark.title}`}>
                    <Swatch kind={mark.kind} /> <strong>{KIND_NAMES[mark.kind]}</strong> <Ago at={mark.at} />{' '}
                    <Link to={pathOf(mark.link)}>{mark.title}</Link>
                  </li>
                ))}
              </ol>
            )}
            {data.truncated && (
              <p class="muted">Only the newest 200 events are shown: zoom in to see older ones.</p>
            )}
          </>
        )}
      </Loading>
    </section>
  );
}

import { bulwarkError } from '../errors/index.js';

/** Longest series name (labels included) the history accepts. */
export const MAX_SERIES_LENGTH = 500;

/** `area.measure_unit`: dotted lower-level names, e.g. `http.latency_p99_ms` or `app.signups_per_s`. */
const NAME = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*$/;
/** One `key="value"` pair of a label block, value escaped as in the Prometheus text format. */
const LABEL = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/y;

/** Labels of a series: name to value. */
export type SeriesLabels = Readonly<Record<string, string>>;

/**
 * The canonical name of a series: `name` alone, or `name{a="1",b="2"}` with the labels sorted by key
 * and `\`, `"` and newlines in values escaped as in the Prometheus text format. Two label objects
 * with the same pairs give the same name, so a series is found by one exact string.
 */
export function seriesName(name: string, labels: SeriesLabels = {}): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return name;
  const pairs = keys.map((key) => `${key}="${escapeValue(labels[key] ?? '')}"`);
  return `${name}{${pairs.join(',')}}`;
}

/** Splits a series name into its name and labels; `undefined` when it is not a valid series name. */
export function parseSeriesName(
  series: string,
): { name: string; labels: Record<string, string> } | undefined {
  const brace = series.indexOf('{');
  const name = brace === -1 ? series : series.slice(0, brace);
  if (!NAME.test(name)) return undefined;
  const labels: Record<string, string> = {};
  if (brace === -1) return { name, labels };
  if (!series.endsWith('}')) return undefined;
  const body = series.slice(brace + 1, -1);
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < body.length) {
    const match = LABEL.exec(body);
    if (match === null) return undefined;
    const [, key = '', value = ''] = match;
    if (key in labels) return undefined;
    labels[key] = value.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return { name, labels };
}

/**
 * The canonical form of an application's series name, with `extra` labels added. Throws
 * `BWK_ERR_METRICS_OPTIONS` naming `field` for a malformed or over-long name.
 */
export function canonicalSeries(series: string, extra: SeriesLabels, field: string): string {
  const parsed = parseSeriesName(series);
  const problem =
    parsed === undefined
      ? 'must be name or name{label="value",...} with a dotted name of letters, digits and _'
      : series.length > MAX_SERIES_LENGTH
        ? `must be at most ${MAX_SERIES_LENGTH} characters`
        : undefined;
  if (problem !== undefined || parsed === undefined) {
    throw bulwarkError(
      'BWK_ERR_METRICS_OPTIONS',
      { summary: `${field} ${problem}` },
      { details: [{ field, message: problem ?? 'is invalid' }] },
    );
  }
  return seriesName(parsed.name, { ...parsed.labels, ...extra });
}

function escapeValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

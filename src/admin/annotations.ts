// Events worth marking on a chart, gathered from where Bulwark already records them: the instances
// registry (deploys), the config revisions, the audit log (flag changes, kill switches), the metrics
// history (automatic dependency switches) and the supervisor (crashes, reloads). Nothing new is
// written for them; each source is one bounded read.
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { bulwarkError } from '../errors/index.js';
import type { InstanceRegistry } from '../instances/registry.js';
import { parseSeriesName } from '../metrics/history.js';
import type { MetricsHistory } from '../metrics/history.js';
import type { Bulwark } from '../runtime/create.js';
import { readSupervisorStatus } from './supervisor.js';

export const ANNOTATION_KINDS = ['deploy', 'config', 'flag', 'dependency', 'restart'] as const;
export type AnnotationKind = (typeof ANNOTATION_KINDS)[number];

/** One event to mark on a chart. */
export interface Annotation {
  /** ms since the epoch (for an automatic switch: the start of the history bucket it happened in). */
  at: number;
  kind: AnnotationKind;
  title: string;
  /** A console path (`/admin/...`) with the details. */
  link: string;
}

/** What {@link annotations} answers. */
export interface Annotations {
  /** Oldest first, at most {@link MAX_ANNOTATIONS} (the newest when there were more). */
  annotations: Annotation[];
  /** True when the range held more than {@link MAX_ANNOTATIONS}: narrow it to see the older ones. */
  truncated: boolean;
  /** Sources that could not be read (the store down, ...): their events are missing. */
  unavailable: string[];
}

/** Options of {@link annotations}. */
export interface AnnotationOptions {
  /** How long the supervisor may take to answer over its control socket (ms, default 250). */
  supervisorTimeoutMs?: number;
  now?: () => number;
}

/** Events an answer carries at most. */
export const MAX_ANNOTATIONS = 200;
/** Dependency mode series read at most (one per dependency and instance). */
const MAX_MODE_SERIES = 20;
/** Buckets of a mode series read at most: a coarser tier is used beyond. */
const MAX_MODE_POINTS = 2_000;

/** An annotation with what combining needs: its dependency, and for a switch seen in the history its bucket (ms). */
type Mark = Annotation & { dependency?: string; bucketMs?: number };
type Source = (bulwark: Bulwark, from: number, to: number, o: AnnotationOptions) => Promise<Mark[]>;

/**
 * A deploy is an instance that started a version no instance started before it had, as far as the
 * registry remembers (rows stay 10 minutes after an instance was last seen, at most 200 rows): the
 * first version it knows is not a deploy (it may be a restart), nor is a version whose first
 * instance is forgotten.
 */
const deploys: Source = async (bulwark, from, to) => {
  const registry = bulwark.parts.get('instances') as InstanceRegistry | undefined;
  if (registry === undefined) return [];
  const rows = (await registry.list({ includeStopped: true })).sort((a, b) => a.startedAt - b.startedAt);
  const seen = new Set<string>();
  const out: Mark[] = [];
  for (const row of rows) {
    if (!seen.has(row.version) && seen.size > 0 && row.startedAt >= from && row.startedAt <= to)
      out.push({
        at: row.startedAt,
        kind: 'deploy',
        title: `Deploy: version ${row.version} started on ${row.host} (pid ${row.pid})`,
        link: '/admin/instances',
      });
    seen.add(row.version);
  }
  return out;
};

/** Config revisions written in the range: pages of the history, newest first, until one is older. */
const configRevisions: Source = async (bulwark, from, to) => {
  const config = bulwark.config;
  if (config === undefined) return [];
  const out: Mark[] = [];
  for (let before = Infinity; ;) {
    const page = await config.history(50, before);
    for (const revision of page) {
      const at = Date.parse(revision.at);
      if (at < from) return out;
      if (at <= to)
        out.push({
          at,
          kind: 'config',
          title: `Config revision ${revision.revision}: ${revision.reason} (${revision.author})`,
          link: `/admin/config?revision=${revision.revision}`,
        });
    }
    const last = page.at(-1);
    if (page.length < 50 || last === undefined || out.length > MAX_ANNOTATIONS) return out;
    before = last.revision;
  }
};

const FLAG_VERBS: Record<string, string> = {
  'flag.set': 'changed',
  'flag.kill': 'killed',
  'flag.revive': 'revived',
  'flag.rollout': 'rollout changed',
  'flag.delete': 'deleted',
};

/**
 * The audit records of the range whose target starts with `prefix` (`flag:`), or is one of
 * `targets`, newest first, one more than an answer carries. Exact targets and, on SQLite, the prefix
 * (BINARY compares code points) are ranges of the `(target, id)` index; a PostgreSQL column keeps
 * the server's collation, where such a range is not a prefix, so there a prefix reads the rows of
 * the time range newest first until enough match (the audit log is capped at 100 000 rows).
 */
async function auditRows(
  bulwark: Bulwark,
  from: number,
  to: number,
  match: { prefix: string } | { targets: string[] },
) {
  let query = bulwark.store.db
    .selectFrom('bulwark_audit')
    .select(['at', 'actor', 'action', 'target', 'detail'])
    .where('at', '>=', from)
    .where('at', '<=', to);
  if ('targets' in match) {
    if (match.targets.length === 0) return [];
    query = query.where('target', 'in', match.targets);
  } else {
    const { prefix } = match;
    query = query.where((eb) =>
      eb(eb.fn<string>('substr', ['target', eb.lit(1), eb.lit(prefix.length)]), '=', prefix),
    );
    if (bulwark.store.engine === 'sqlite')
      query = query.where('target', '>=', prefix).where('target', '<', `${prefix.slice(0, -1)};`);
  }
  const rows = await query
    .orderBy('id', 'desc')
    .limit(MAX_ANNOTATIONS + 1)
    .execute();
  return rows.map((row) => {
    let detail: { reason?: unknown } | null = null;
    try {
      detail = row.detail === null ? null : (JSON.parse(row.detail) as { reason?: unknown });
    } catch {
      // A detail that is not JSON has no reason to show.
    }
    const reason = typeof detail?.reason === 'string' && detail.reason !== '' ? `: ${detail.reason}` : '';
    return { ...row, at: Number(row.at), name: row.target.slice(row.target.indexOf(':') + 1), reason };
  });
}

const flagChanges: Source = async (bulwark, from, to) =>
  (await auditRows(bulwark, from, to, { prefix: 'flag:' })).map((row) => ({
    at: row.at,
    kind: 'flag',
    title: `Flag ${row.name} ${FLAG_VERBS[row.action] ?? row.action} by ${row.actor}${row.reason}`,
    link: `/admin/flags/${encodeURIComponent(row.name)}`,
  }));

/** Kill switch changes of the dependencies this instance has (`dependency:<name>` audit records). */
const killSwitches: Source = async (bulwark, from, to) =>
  (
    await auditRows(bulwark, from, to, {
      targets: Object.keys(bulwark.dependencies).map((name) => `dependency:${name}`),
    })
  ).map((row) => ({
    at: row.at,
    kind: 'dependency',
    dependency: row.name,
    title:
      row.action === 'dependency.force'
        ? `${row.name} forced onto its fallback by ${row.actor}${row.reason}`
        : `${row.name} kill switch released by ${row.actor}${row.reason}`,
    link: '/admin/dependencies',
  }));

/**
 * Automatic dependency switches, from the metrics history's `dependency.mode` series (1 primary, 0
 * fallback): a bucket whose last value differs from the one before, or whose min and max differ
 * (there and back within it). Marked at the bucket's start, so as precise as the tier read (10 s
 * for the last 6 h by default). One event per dependency and bucket, whatever the instances.
 */
const automaticSwitches: Source = async (bulwark, from, to, o) => {
  const history: MetricsHistory | undefined = bulwark.metrics.history;
  if (history === undefined) return [];
  const now = (o.now ?? Date.now)();
  const covering = history.tiers.filter((t) => now - t.retentionMs <= from);
  const tier =
    covering.find((t) => (to - from) / (t.resolutionS * 1000) <= MAX_MODE_POINTS) ?? history.tiers.at(-1);
  const names = (await history.seriesNames('dependency.mode')).slice(0, MAX_MODE_SERIES);
  const bucketMs = (tier?.resolutionS ?? 0) * 1000;
  const found = new Map<string, Mark>();
  for (const series of names) {
    const dependency = parseSeriesName(series)?.labels['dependency'] ?? series;
    const { points } = await history.query(series, from, to, tier?.resolutionS);
    points.forEach((point, i) => {
      const what = switchIn(points[i - 1]?.last, point);
      if (what === undefined || point.at < from) return;
      found.set(`${dependency} ${point.at} ${what}`, {
        at: point.at,
        kind: 'dependency',
        dependency,
        bucketMs,
        title: `${dependency} ${what} (automatic)`,
        link: '/admin/dependencies',
      });
    });
  }
  return [...found.values()];
};

/**
 * What a mode bucket says happened, given the last value of the bucket before (undefined: none, or
 * not read): a different last value is a switch that way; min and max apart with the same last value
 * is a switch and back within the bucket.
 */
function switchIn(
  before: number | undefined,
  point: { min: number; max: number; last: number },
): string | undefined {
  const changed = before !== undefined && before !== point.last;
  if (!changed && point.min === point.max) return undefined;
  if (changed || before === undefined)
    return point.last === 0 ? 'switched to its fallback' : 'back on its primary';
  return point.last === 0 ? 'back on its primary and off again' : 'switched to its fallback and back';
}

interface CrashStatus {
  at?: string;
  slot?: number;
  reason?: string;
  exitCode?: number | null;
  signal?: string | null;
}

/** Under `bulwark supervise`: its crash records (the app ended unplanned, restarted) and its last reload. */
const restarts: Source = async (_bulwark, from, to, o) => {
  const view = await readSupervisorStatus(o.supervisorTimeoutMs ?? 250);
  const status = view.status as
    { crashes?: CrashStatus[]; lastReload?: { ok?: boolean; at?: string; detail?: string } } | undefined;
  const out: Mark[] = (status?.crashes ?? []).map((crash) => ({
    at: Date.parse(crash.at ?? ''),
    kind: 'restart',
    title: `Slot ${crash.slot ?? '?'} ended unplanned: ${crash.reason ?? 'unknown'} (exit ${crash.exitCode ?? crash.signal ?? '?'})`,
    link: '/admin/processes',
  }));
  const reload = status?.lastReload;
  if (reload !== undefined)
    out.push({
      at: Date.parse(reload.at ?? ''),
      kind: 'restart',
      title: `Reload ${reload.ok === true ? 'done' : 'failed'}: ${reload.detail ?? ''}`,
      link: '/admin/processes',
    });
  return out.filter((a) => a.at >= from && a.at <= to);
};

const SOURCES: Record<string, Source> = {
  deploys,
  config: configRevisions,
  flags: flagChanges,
  'kill-switches': killSwitches,
  'dependency-switches': automaticSwitches,
  supervisor: restarts,
};

/**
 * The events between `from` and `to` (ms since the epoch, inclusive) from every source at once; a
 * source that fails is named in `unavailable` and the others still answer. Never rejects.
 */
export async function annotations(
  bulwark: Bulwark,
  from: number,
  to: number,
  o: AnnotationOptions = {},
): Promise<Annotations> {
  const unavailable: string[] = [];
  const lists = await Promise.all(
    Object.entries(SOURCES).map(([name, source]) =>
      source(bulwark, from, to, o).catch((error: unknown) => {
        bulwark.logger.warn({ err: error, source: name }, 'annotations: a source could not be read');
        unavailable.push(name);
        return [];
      }),
    ),
  );
  const marks = lists.flat();
  // A kill switch changes the mode too: the history's switch next to it is the same event.
  const forced = marks.filter((m) => m.dependency !== undefined && m.bucketMs === undefined);
  const all = marks
    .filter(
      (m) =>
        m.bucketMs === undefined ||
        !forced.some((f) => f.dependency === m.dependency && Math.abs(f.at - m.at) <= (m.bucketMs ?? 0)),
    )
    .sort((a, b) => b.at - a.at);
  return {
    annotations: all
      .slice(0, MAX_ANNOTATIONS)
      .reverse()
      .map(({ at, kind, title, link }) => ({ at, kind, title, link })),
    truncated: all.length > MAX_ANNOTATIONS,
    unavailable: unavailable.sort(),
  };
}

const AnnotationSchema = Type.Object({
  at: Type.Integer({ description: 'ms since the epoch' }),
  kind: Type.Enum([...ANNOTATION_KINDS]),
  title: Type.String(),
  link: Type.String({ description: 'a console path with the details' }),
});

/**
 * `GET /annotations?from=&to=`: the events of {@link annotations} in a time range (ms since the
 * epoch; default the hour before now), for the console's charts. Register inside the authenticated
 * admin scope: it checks no key itself. `from` after `to` is 400 `BWK_ERR_HTTP_VALIDATION`.
 */
export function registerAnnotationRoutes(
  admin: FastifyInstance,
  bulwark: Bulwark,
  options: AnnotationOptions = {},
): void {
  admin.withTypeProvider<TypeBoxTypeProvider>().get(
    '/annotations',
    {
      schema: {
        tags: ['admin'],
        summary: 'Deploys, config revisions, flag changes, dependency switches and restarts in a time range',
        security: [{ adminKey: [] }],
        querystring: Type.Object({
          from: Type.Optional(
            Type.Integer({ minimum: 0, description: 'ms since the epoch; default to - 1 h' }),
          ),
          to: Type.Optional(Type.Integer({ minimum: 0, description: 'ms since the epoch; default now' })),
        }),
        response: {
          200: Type.Object({
            annotations: Type.Array(AnnotationSchema),
            truncated: Type.Boolean(),
            unavailable: Type.Array(Type.String()),
          }),
        },
      },
    },
    async (request) => {
      const to = request.query.to ?? (options.now ?? Date.now)();
      const from = request.query.from ?? Math.max(0, to - 3_600_000);
      if (from > to)
        throw bulwarkError('BWK_ERR_HTTP_VALIDATION', {
          part: 'querystring',
          detail: 'from must not be after to',
        });
      return annotations(bulwark, from, to, options);
    },
  );
}

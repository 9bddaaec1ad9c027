// Spin's queue statistics (seed 003, task 1.1): who waits now by gender and group, the waits and
// match success by gender and group over 1 h / 24 h / 7 d, the estimate a newcomer of each group
// would be shown, trends from the metrics history and plain-word recommendations for the admin; an
// anonymised, cached summary of the same for everyone. Every answer is bounded: window aggregates
// read at most `windowCap` matches each, sampling longer ones (stats-windows.ts), and are cached
// through bulwark.cache.
import type { Bulwark } from 'bulwark';
import { GENDERS, type Gender, type WaitEstimate } from './domain/types.js';
import { formatDuration } from './domain/wording.js';
import { groupFromKey, type SpinService } from './service.js';
import { recommendations, type Advice } from './stats-advice.js';
import type { RecentActivity } from './stats-activity.js';
import {
  aggregateWindow,
  byGender,
  byGroup,
  WINDOWS,
  type WaitSummary,
  type WindowAggregate,
  type WindowName,
} from './stats-windows.js';

/** How long each window's aggregate is reused (ms): the longer the window, the less a minute moves it. */
const WINDOW_CACHE_MS: Record<WindowName, number> = { '1h': 10_000, '24h': 60_000, '7d': 300_000 };
/** How long the public status and the trends are reused (ms). */
const PUBLIC_CACHE_MS = 5_000;
const TRENDS_CACHE_MS = 60_000;
/** Public counts are rounded to this, and waits and rates are shown only over at least this many. */
export const PUBLIC_ROUNDING = 5;
const PUBLIC_MIN_SAMPLE = 10;
/** Trend points per series (over 24 h: one per 30 minutes; over 1 h, one per 75 s). */
const TREND_POINTS = 48;

/** How many wait now. */
export interface Waiting {
  total: number;
  byGender: Record<Gender, number>;
  /** By group key (`man:woman`), groups with nobody waiting left out. */
  byGroup: Record<string, number>;
}

/** One window of the admin's statistics (the summaries are of the sample when `sampleEvery` > 1). */
export type WindowStats = Pick<WindowAggregate, 'fromMs' | 'matches' | 'sampleEvery' | 'sampled'> & {
  byGender: Record<Gender, WaitSummary>;
  byGroup: Record<string, WaitSummary>;
};

/** `GET /api/admin/queue-stats`. */
export interface AdminQueueStats {
  at: number;
  waiting: Waiting;
  windows: Record<WindowName, WindowStats>;
  /** What someone of each group joining now would be shown (groups waiting or matched in 24 h). */
  estimates: { group: string; waiting: number; estimate: WaitEstimate }[];
  /** Matches per minute over the last 5 minutes and the hour before, and their ratio when known. */
  matchRate: { recent: number; baseline: number; ratio: number | null };
  /** Spin's series over the range asked (24 h by default; null without the metrics history). */
  trends: Trends | null;
  recommendations: Advice[];
}

/** Series from the metrics history over a range: per series, each bucket's start, mean and highest. */
export interface Trends {
  range: WindowName;
  fromMs: number;
  series: Record<string, { at: number; avg: number; max: number }[]>;
}

/** `GET /api/queue-status`: anonymised (no ids, no names, counts rounded). */
export interface PublicQueueStatus {
  at: number;
  /** Rounded to the nearest 5: 1 or 2 waiting show as 0. */
  waiting: { total: number; byGender: Record<Gender, number> };
  last24h: {
    /** Rounded to the nearest 5. */
    matches: number;
    /** Both liked, of the settled matches (two decimals); null under 10 settled. */
    successRate: number | null;
    /** Whole seconds; a gender with fewer than 10 matched shows null. */
    waits: Record<Gender, { avgMs: number; p90Ms: number } | null>;
  };
  health: { status: 'pass' | 'warn' | 'fail'; summary: string };
}

/** Options of {@link QueueStats}. */
export interface QueueStatsOptions {
  bulwark: Bulwark;
  spin: SpinService;
  activity: RecentActivity;
  /** Spin's series names in the metrics history (the trends). */
  series: readonly string[];
  /** The most matches one window's aggregate reads (default {@link DEFAULT_WINDOW_CAP}); more are sampled. */
  windowCap?: number;
  now?: () => number;
}

const HEALTH: Record<PublicQueueStatus['health']['status'], string> = {
  pass: 'All systems normal.',
  warn: 'Running in a degraded mode: matching goes on, some things may be slower.',
  fail: 'Having trouble: matches may be delayed.',
};

const round = (n: number, step = PUBLIC_ROUNDING) => Math.round(n / step) * step;

export class QueueStats {
  readonly #o: QueueStatsOptions;
  readonly #now: () => number;
  readonly #cache: ReturnType<Bulwark['cache']['namespace']>;

  constructor(options: QueueStatsOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#cache = options.bulwark.cache.namespace('spin-stats');
  }

  /** A window's aggregate, reused for a while (see WINDOW_CACHE_MS). */
  window(name: WindowName): Promise<WindowAggregate> {
    return this.#cache.getOrSet(
      `window:${name}`,
      () => aggregateWindow(this.#o.bulwark.store, name, this.#now(), this.#o.windowCap),
      { ttl: WINDOW_CACHE_MS[name] },
    );
  }

  /** Who waits now (read from the store: exact). */
  async waiting(): Promise<Waiting> {
    const groups = await this.#o.spin.store.waitingByGroup();
    const byGender = Object.fromEntries(GENDERS.map((g) => [g, 0])) as Record<Gender, number>;
    const byGroup: Record<string, number> = {};
    let total = 0;
    for (const [key, n] of groups) {
      const group = groupFromKey(key);
      if (group === undefined || n <= 0) continue;
      byGender[group.gender] += n;
      byGroup[key] = n;
      total += n;
    }
    return { total, byGender, byGroup };
  }

  /** The admin's statistics (see {@link AdminQueueStats}). */
  async admin(range: WindowName = '24h'): Promise<AdminQueueStats> {
    const [waiting, hour, day, week, trends] = await Promise.all([
      this.waiting(),
      this.window('1h'),
      this.window('24h'),
      this.window('7d'),
      this.trends(range, Object.fromEntries(this.#o.series.map((name) => [name, null]))),
    ]);
    const windows = {} as Record<WindowName, WindowStats>;
    for (const aggregate of [hour, day, week])
      windows[aggregate.window] = {
        fromMs: aggregate.fromMs,
        matches: aggregate.matches,
        sampleEvery: aggregate.sampleEvery,
        sampled: aggregate.sampled,
        byGender: byGender(aggregate.cells),
        byGroup: byGroup(aggregate.cells),
      };
    const rate = this.#o.activity.matchRate();
    return {
      at: this.#now(),
      waiting,
      windows,
      estimates: this.#estimates(waiting, day),
      matchRate: { ...rate, ratio: rate.ratio ?? null },
      trends,
      recommendations: recommendations({
        arrivals: await this.#arrivals(),
        waiting: waiting.byGender,
        day: day.cells,
        hour: hour.cells,
        matchRate: rate,
      }),
    };
  }

  /** The public status (see {@link PublicQueueStatus}), reused for 5 s. */
  public(): Promise<PublicQueueStatus> {
    return this.#cache.getOrSet(
      'public',
      async () => {
        const [waiting, day] = await Promise.all([this.waiting(), this.window('24h')]);
        const genders = byGender(day.cells);
        const all = Object.values(genders);
        const settled = all.reduce((sum, s) => sum + s.settled, 0);
        const success = all.reduce((sum, s) => sum + s.success, 0);
        const waits = {} as PublicQueueStatus['last24h']['waits'];
        for (const gender of GENDERS) {
          const s = genders[gender];
          waits[gender] =
            s.matched < PUBLIC_MIN_SAMPLE || s.avgWaitMs === null || s.p90WaitMs === null
              ? null
              : { avgMs: round(s.avgWaitMs, 1000), p90Ms: round(s.p90WaitMs, 1000) };
        }
        const status = this.#o.bulwark.health.report().status;
        return {
          at: this.#now(),
          waiting: {
            total: round(waiting.total),
            byGender: Object.fromEntries(GENDERS.map((g) => [g, round(waiting.byGender[g])])) as Record<
              Gender,
              number
            >,
          },
          last24h: {
            matches: round(day.matches),
            // Counted once per side: settled / 2 matches.
            successRate: settled / 2 < PUBLIC_MIN_SAMPLE ? null : Math.round((success / settled) * 100) / 100,
            waits,
          },
          health: { status, summary: HEALTH[status] },
        };
      },
      { ttl: PUBLIC_CACHE_MS },
    );
  }

  /** The estimate a newcomer of each group waiting now or matched in the window would be shown. */
  #estimates(waiting: Waiting, day: WindowAggregate): AdminQueueStats['estimates'] {
    const keys = new Set([...Object.keys(waiting.byGroup), ...day.cells.map((cell) => cell.group)]);
    const out: AdminQueueStats['estimates'] = [];
    for (const key of keys) {
      const group = groupFromKey(key);
      if (group === undefined) continue;
      const n = waiting.byGroup[key] ?? 0;
      out.push({ group: key, waiting: n, estimate: this.#o.spin.estimate(group, n + 1, true) });
    }
    return out.sort((a, b) => b.waiting - a.waiting || (a.group < b.group ? -1 : 1));
  }

  /**
   * Arrivals of men seeking women and of women seeking men: over the last 24 h from the metrics
   * history when it holds at least an hour of them, else the last hour from the feed.
   */
  async #arrivals(): Promise<{ men: number; women: number; over: string }> {
    const history = this.#o.bulwark.metrics.history;
    const now = this.#now();
    if (history !== undefined) {
      const read = async (labels: string) => {
        const { points } = await history.query(
          `app.spin.arrivals_per_min{${labels}}`,
          now - WINDOWS['24h'],
          now,
        );
        const samples = points.reduce((sum, p) => sum + p.count, 0);
        const mean = samples === 0 ? 0 : points.reduce((sum, p) => sum + p.avg * p.count, 0) / samples;
        return { mean, from: points[0]?.at ?? now };
      };
      const [men, women] = await Promise.all([
        read('gender="man",seeking="woman"'),
        read('gender="woman",seeking="man"'),
      ]);
      const coveredMs = now - Math.min(men.from, women.from);
      if (coveredMs >= 3_600_000) {
        const minutes = coveredMs / 60_000;
        const over =
          coveredMs >= 23 * 3_600_000 ? 'in the last 24 h' : `in the last ${formatDuration(coveredMs)}`;
        return { men: Math.round(men.mean * minutes), women: Math.round(women.mean * minutes), over };
      }
    }
    const { men, women } = this.#o.activity.arrivals(60);
    return { men, women, over: 'in the last hour' };
  }

  /**
   * Spin's series over the last `range` (1 h, 24 h or 7 d), at most 48 points each, reused for a
   * minute. `names` maps each series to the step its values are rounded to (the public trends), or
   * to null for exact values.
   */
  async trends(range: WindowName, names: Readonly<Record<string, number | null>>): Promise<Trends | null> {
    const history = this.#o.bulwark.metrics.history;
    if (history === undefined) return null;
    return this.#cache.getOrSet(
      `trends:${range}:${JSON.stringify(names)}`,
      async () => {
        const now = this.#now();
        const fromMs = now - WINDOWS[range];
        const series: Trends['series'] = {};
        for (const [name, step] of Object.entries(names)) {
          // toPrecision: 3 × 0.1 shows as 0.3, not 0.30000000000000004.
          const shown = (n: number) => (step === null ? n : Number(round(n, step).toPrecision(12)));
          const { points } = await history.query(name, fromMs, now, undefined, TREND_POINTS);
          series[name] = points.map((p) => ({ at: p.at, avg: shown(p.avg), max: shown(p.max) }));
        }
        return { range, fromMs, series };
      },
      { ttl: TRENDS_CACHE_MS },
    );
  }
}

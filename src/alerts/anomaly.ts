// Anomaly rules: a band around a seasonal baseline, recomputed at each evaluation from the metrics
// history. The baseline blends the median of the same time on the previous days (where the history
// has them) with an EWMA of the recent points; the band is k robust standard deviations (1.4826 ·
// MAD), never narrower than a floor, so a flat series does not alert on noise.
import type { MetricsHistory } from '../metrics/history.js';
import type { AlertRule, AnomalyDetail, Judged, Limits } from './rules.js';

const DAY_MS = 86_400_000;
/** MAD · 1.4826 estimates the standard deviation of normal data; mean |deviation| · 1.2533 too. */
const MAD_TO_SIGMA = 1.4826;
const MEAN_AD_TO_SIGMA = 1.2533;

/** The anomaly fields of a rule, all set. */
interface AnomalyFields {
  direction: 'above' | 'below' | 'both';
  k: number;
  clearK?: number;
  seasonDays: number;
  minDays: number;
  minSamples: number;
  recentMs: number;
  halfLifeMs: number;
  seasonWeight: number;
  minBand: number;
  minBandRatio: number;
  windowMs: number;
}

/** Defaults of the anomaly fields of a rule. */
export const ANOMALY_DEFAULTS: Readonly<AnomalyFields> = {
  direction: 'both',
  k: 3,
  seasonDays: 7,
  minDays: 3,
  minSamples: 30,
  recentMs: 3_600_000,
  halfLifeMs: 900_000,
  seasonWeight: 0.5,
  minBand: 0,
  minBandRatio: 0.05,
  windowMs: 60_000,
};

/** The median of `values` (NaN when empty). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/**
 * A robust standard deviation of `values`: 1.4826 · the median absolute deviation, or, when more than
 * half the values are equal (MAD 0), 1.2533 · the mean absolute deviation from the median.
 */
export function robustSigma(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const m = median(values);
  const deviations = values.map((v) => Math.abs(v - m));
  const mad = median(deviations);
  if (mad > 0) return MAD_TO_SIGMA * mad;
  return (MEAN_AD_TO_SIGMA * deviations.reduce((a, b) => a + b, 0)) / deviations.length;
}

/**
 * The exponentially weighted mean of `points` (oldest first) at time `now`: each point weighs
 * 2^(−age / halfLifeMs), so irregular spacing is handled. NaN when empty.
 */
export function ewma(
  points: readonly { at: number; value: number }[],
  now: number,
  halfLifeMs: number,
): number {
  let weighted = 0;
  let total = 0;
  for (const p of points) {
    const w = Math.pow(2, -(now - p.at) / halfLifeMs);
    weighted += w * p.value;
    total += w;
  }
  return total > 0 ? weighted / total : Number.NaN;
}

/**
 * The firing and clearing limits of `rule` (pure): baseline = `seasonWeight` · median(`seasonal`) +
 * (1 − `seasonWeight`) · EWMA(`recent`) (the EWMA alone when `minDays` is 0 and no day has points);
 * σ = the larger robust deviation of the seasonal values and of the recent points; the firing band
 * is max(k · σ, floor) with floor = max(`minBand`, `minBandRatio` · |baseline|), the clearing band
 * the same with `clearK` (default k − 1, at least 1). No limits, and the reason, when the history
 * has fewer than `minDays` days or `minSamples` recent points.
 */
export function anomalyLimits(
  rule: AlertRule,
  seasonal: readonly number[],
  recent: readonly { at: number; value: number }[],
  now: number,
): { limits: Limits; detail: AnomalyDetail } {
  const o = { ...ANOMALY_DEFAULTS, ...definedOf(rule) };
  const detail: AnomalyDetail = { days: seasonal.length, samples: recent.length };
  if (seasonal.length < o.minDays)
    return {
      limits: {},
      detail: {
        ...detail,
        reason: `no baseline: ${seasonal.length} of ${o.minDays} days of history at this time`,
      },
    };
  if (recent.length < o.minSamples)
    return {
      limits: {},
      detail: { ...detail, reason: `no baseline: ${recent.length} of ${o.minSamples} recent points` },
    };
  const trend = ewma(recent, now, o.halfLifeMs);
  const baseline =
    seasonal.length === 0 ? trend : o.seasonWeight * median(seasonal) + (1 - o.seasonWeight) * trend;
  const sigma = Math.max(robustSigma(seasonal), robustSigma(recent.map((p) => p.value)));
  const floor = Math.max(o.minBand, o.minBandRatio * Math.abs(baseline));
  const clearK = o.clearK ?? Math.max(1, o.k - 1);
  const band = Math.max(o.k * sigma, floor);
  const clearBand = Math.max(clearK * sigma, (floor * clearK) / o.k);
  const limits: Limits = {};
  if (o.direction !== 'below') {
    limits.fireAbove = baseline + band;
    limits.clearAbove = baseline + clearBand;
  }
  if (o.direction !== 'above') {
    limits.fireBelow = baseline - band;
    limits.clearBelow = baseline - clearBand;
  }
  return { limits, detail: { ...detail, baseline, band } };
}

/** The anomaly fields `rule` sets (undefined ones left out, so the defaults apply). */
function definedOf(rule: AlertRule): Partial<AnomalyFields> {
  const fields = [
    'direction',
    'k',
    'clearK',
    'seasonDays',
    'minDays',
    'minSamples',
    'recentMs',
    'halfLifeMs',
    'seasonWeight',
    'minBand',
    'minBandRatio',
    'windowMs',
  ] as const;
  return Object.fromEntries(fields.filter((f) => rule[f] !== undefined).map((f) => [f, rule[f]]));
}

/**
 * Judges anomaly rules on `history`: the value is the mean of the points of the last `windowMs`
 * (default 60 s); the same window on each of the previous `seasonDays` days gives one seasonal value
 * (from whichever tier still holds that day: minutes for a week, hours after); the points of the
 * `recentMs` before the window feed the EWMA and the recent spread. Seasonal values are cached per
 * rule for a minute (they move with the clock, slowly).
 */
export function anomalyJudge(history: MetricsHistory): (rule: AlertRule, now: number) => Promise<Judged> {
  const cache = new Map<string, { minute: number; values: number[] }>();
  const mean = async (series: string, from: number, to: number): Promise<number | undefined> => {
    const { points } = await history.query(series, Math.max(0, from), Math.max(0, to));
    return points.length === 0 ? undefined : points.reduce((sum, p) => sum + p.avg, 0) / points.length;
  };
  return async (rule, now) => {
    const o = { ...ANOMALY_DEFAULTS, ...definedOf(rule) };
    const windowMs = Math.max(o.windowMs, 2 * history.intervalMs);
    const minute = Math.floor(now / 60_000);
    let seasonal = cache.get(rule.id);
    if (seasonal?.minute !== minute) {
      const values: number[] = [];
      for (let day = 1; day <= o.seasonDays; day++) {
        const value = await mean(rule.series, now - day * DAY_MS - windowMs, now - day * DAY_MS);
        if (value !== undefined) values.push(value);
      }
      seasonal = { minute, values };
      cache.set(rule.id, seasonal);
    }
    const { points } = await history.query(rule.series, Math.max(0, now - windowMs - o.recentMs), now);
    const recent = points.filter((p) => p.at < now - windowMs).map((p) => ({ at: p.at, value: p.avg }));
    const current = points.filter((p) => p.at >= now - windowMs);
    const value =
      current.length === 0 ? undefined : current.reduce((sum, p) => sum + p.avg, 0) / current.length;
    const { limits, detail } = anomalyLimits(rule, seasonal.values, recent, now);
    return { value: detail.reason === undefined ? value : undefined, limits, detail };
  };
}

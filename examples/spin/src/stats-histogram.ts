/**
 * Waits counted in logarithmic buckets, so that a quantile of any number of waits is read from a
 * fixed, small table: bucket b holds the waits w with ⌊ln(1 + w / 1 s) × 8⌋ = b. A bucket is
 * (e^(1/8) − 1) ≈ 13.3% of (1 s + the wait) wide: 0.13 s at 0, 8 s at a minute, 1.9 min at 14
 * minutes; 108 buckets reach 7 days. The same formula is computed in SQL (stats-windows.ts) and in
 * memory (stats-activity.ts); a quantile is interpolated inside its bucket, so it is within 13% (plus
 * 0.13 s) of the exact one, usually much closer.
 */

/** Buckets per e-fold of (1 + seconds). */
export const BUCKETS_PER_E = 8;

/** Highest bucket kept (≈ 7 days); longer waits count in it. */
export const MAX_BUCKET = 107;

/** The bucket of a wait of `ms` milliseconds. */
export function bucketOf(ms: number): number {
  return Math.min(MAX_BUCKET, Math.max(0, Math.floor(Math.log1p(Math.max(0, ms) / 1000) * BUCKETS_PER_E)));
}

/** Where bucket `b` starts, in ms. */
export function bucketStartMs(b: number): number {
  return Math.expm1(b / BUCKETS_PER_E) * 1000;
}

/** A histogram: [bucket, count] pairs, in any order, a bucket possibly more than once. */
export type HistogramEntries = Iterable<readonly [bucket: number, count: number]>;

/**
 * The `q`-quantile (0 < q ≤ 1) of the waits counted in `entries`, in whole ms, interpolated linearly
 * inside its bucket; null when nothing is counted.
 */
export function quantileMs(entries: HistogramEntries, q: number): number | null {
  const counts = new Map<number, number>();
  let total = 0;
  for (const [bucket, count] of entries) {
    if (count <= 0) continue;
    counts.set(bucket, (counts.get(bucket) ?? 0) + count);
    total += count;
  }
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (const bucket of [...counts.keys()].sort((a, b) => a - b)) {
    const count = counts.get(bucket) ?? 0;
    if (seen + count >= rank) {
      const start = bucketStartMs(bucket);
      const fraction = Math.min(1, Math.max(0, (rank - seen) / count));
      return Math.round(start + (bucketStartMs(bucket + 1) - start) * fraction);
    }
    seen += count;
  }
  return Math.round(bucketStartMs(MAX_BUCKET + 1));
}

// The waits and outcomes of the matches made over a window (1 h, 24 h, 7 d), aggregated in SQL:
// one query per window reads the window's matches (by the matched_at index), both sides of each
// joined to their user, and answers one row per (gender, seeking, wait bucket) with the count, the
// sum of waits and the outcomes — at most 21 groups × 108 buckets rows, whatever the number of
// matches. Averages are exact; quantiles come from the buckets (stats-histogram.ts). A window with
// more matches than the cap is sampled in time (see aggregateWindow), so each answer reads about
// the cap's worth of matches however many the window holds.
import { sql, type Kysely } from 'kysely';
import type { Store } from 'bulwark';
import { GENDERS, type Gender, type GroupKey } from './domain/types.js';
import type { SpinTables } from './schema.js';
import { BUCKETS_PER_E, MAX_BUCKET, quantileMs } from './stats-histogram.js';

/**
 * The most matches one window's aggregate reads by default. On SQLite the aggregate costs about
 * 5 µs per match read (both sides joined to their users and grouped; examples/spin/bench/stats.ts),
 * so ~30 ms at the cap however many matches the window holds; a quantile of 5,000 matches is as
 * good as one of all of them.
 */
export const DEFAULT_WINDOW_CAP = 5_000;

/** A sampled window is read in this many short stretches, evenly spaced back from its end. */
export const SAMPLE_SLICES = 48;

/** The windows the statistics are given over, in ms. */
export const WINDOWS = { '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000 } as const;

export type WindowName = keyof typeof WINDOWS;

/**
 * The stretches of time a window sampled 1 in `every` reads: {@link SAMPLE_SLICES} stretches, each
 * 1/`every` of a slice long, ending at `now` and every window/48 before it — (from, to] in ms.
 */
export function sampleRanges(window: WindowName, now: number, every: number): [from: number, to: number][] {
  const slice = WINDOWS[window] / SAMPLE_SLICES;
  return Array.from({ length: SAMPLE_SLICES }, (_, i) => {
    const to = Math.round(now - i * slice);
    return [Math.round(to - slice / every), to];
  });
}

/** The matched waits of one group in one wait bucket over a window. */
export interface WaitCell {
  group: GroupKey;
  bucket: number;
  /** Members of the group matched with a wait in this bucket. */
  count: number;
  /** The sum of their waits, ms. */
  totalMs: number;
  /** Of those matches, how many both voted on, and how many both liked. */
  settled: number;
  success: number;
}

/** A window's aggregate, as cached (plain JSON). */
export interface WindowAggregate {
  window: WindowName;
  /** The window: matches made in [fromMs, toMs]. */
  fromMs: number;
  toMs: number;
  /** Matches (pairs) made in the window. */
  matches: number;
  /**
   * 1 when every match was read; k when the window held more than the cap and 1/k of its time was
   * read (see aggregateWindow), so cells count a sample of about matches / k.
   */
  sampleEvery: number;
  /** Matches read (the cells count both their sides). */
  sampled: number;
  cells: WaitCell[];
}

/** Waits and outcomes of the matches of some members (a gender, a group). */
export interface WaitSummary {
  matched: number;
  avgWaitMs: number | null;
  p90WaitMs: number | null;
  settled: number;
  success: number;
  /** success / settled, null when none settled. */
  successRate: number | null;
}

/**
 * The window's aggregate at `now`. A window with more than `cap` matches (counted on the index
 * first) is sampled in time: with k = ⌈matches / cap⌉ only the matches of {@link sampleRanges} are
 * read, 1/k of the window's time in 48 stretches spread over all of it (a 7-day window still shows
 * 7 days), each an index range: about `cap` matches read, never a scan of the whole window.
 */
export async function aggregateWindow(
  store: Store,
  window: WindowName,
  now: number,
  cap: number = DEFAULT_WINDOW_CAP,
): Promise<WindowAggregate> {
  const db: Kysely<SpinTables> = store.db.withTables<SpinTables>();
  const fromMs = now - WINDOWS[window];
  const counted = await db
    .selectFrom('spin_matches')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('matched_at', '>=', fromMs)
    .where('matched_at', '<=', now)
    .executeTakeFirst();
  const matches = Number(counted?.n ?? 0);
  const every = Math.max(1, Math.ceil(matches / Math.max(1, cap)));
  const rows = await db
    // Materialised: both sides read it, and it is read once (PostgreSQL ≥ 12, SQLite ≥ 3.35).
    .with(
      (cte) => cte('recent').materialized(),
      (qc) => {
        const read = qc
          .selectFrom('spin_matches')
          .select(['user_a', 'user_b', 'waited_a_ms', 'waited_b_ms', 'outcome']);
        if (every === 1) return read.where('matched_at', '>=', fromMs).where('matched_at', '<=', now);
        return read.where((eb) =>
          eb.or(
            sampleRanges(window, now, every).map(([from, to]) =>
              eb.and([eb('matched_at', '>', from), eb('matched_at', '<=', to)]),
            ),
          ),
        );
      },
    )
    .with('sides', (qc) =>
      qc
        .selectFrom('recent')
        .select(['user_a as uid', 'waited_a_ms as waited', 'outcome'])
        .unionAll(qc.selectFrom('recent').select(['user_b as uid', 'waited_b_ms as waited', 'outcome'])),
    )
    .selectFrom('sides')
    .innerJoin('spin_users', 'spin_users.id', 'sides.uid')
    .select((eb) => [
      'spin_users.gender',
      'spin_users.seeking',
      sql<number>`cast(floor(ln(1 + sides.waited / 1000.0) * ${sql.lit(BUCKETS_PER_E)}) as integer)`.as(
        'bucket',
      ),
      eb.fn.countAll<number | string>().as('n'),
      eb.fn.sum<number | string>('sides.waited').as('total'),
      sql<number | string>`sum(case when sides.outcome = 'success' then 1 else 0 end)`.as('success'),
      sql<number | string>`sum(case when sides.outcome <> 'pending' then 1 else 0 end)`.as('settled'),
    ])
    .groupBy(['spin_users.gender', 'spin_users.seeking', 'bucket'])
    .execute();
  let sides = 0;
  const cells = rows.map((row): WaitCell => {
    const count = Number(row.n);
    sides += count;
    return {
      group: `${row.gender as Gender}:${row.seeking}`,
      bucket: Math.min(MAX_BUCKET, Number(row.bucket)),
      count,
      totalMs: Number(row.total),
      settled: Number(row.settled),
      success: Number(row.success),
    };
  });
  return { window, fromMs, toMs: now, matches, sampleEvery: every, sampled: sides / 2, cells };
}

/** The waits and outcomes of the cells whose group `include` accepts. */
export function summarise(cells: readonly WaitCell[], include: (group: GroupKey) => boolean): WaitSummary {
  let matched = 0;
  let total = 0;
  let settled = 0;
  let success = 0;
  const histogram: [number, number][] = [];
  for (const cell of cells) {
    if (!include(cell.group)) continue;
    matched += cell.count;
    total += cell.totalMs;
    settled += cell.settled;
    success += cell.success;
    histogram.push([cell.bucket, cell.count]);
  }
  return {
    matched,
    avgWaitMs: matched === 0 ? null : Math.round(total / matched),
    p90WaitMs: quantileMs(histogram, 0.9),
    settled,
    success,
    successRate: settled === 0 ? null : success / settled,
  };
}

/** The summary of each gender. */
export function byGender(cells: readonly WaitCell[]): Record<Gender, WaitSummary> {
  const out = {} as Record<Gender, WaitSummary>;
  for (const gender of GENDERS) out[gender] = summarise(cells, (group) => group.startsWith(`${gender}:`));
  return out;
}

/** The summary of each group that was matched in the window. */
export function byGroup(cells: readonly WaitCell[]): Record<string, WaitSummary> {
  const out: Record<string, WaitSummary> = {};
  for (const group of new Set(cells.map((cell) => cell.group)).values())
    out[group] = summarise(cells, (g) => g === group);
  return out;
}

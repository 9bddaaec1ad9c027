// The queue's recent activity in fixed memory, kept from the event feed every instance reads (so
// each instance sees all of it): arrivals, matches with their waits, and vote outcomes, in one-minute
// buckets over the last hour. Spin's metrics-history series are read from it (no query per sample),
// and its default alert rules judge those series.
import type { AlertRule } from 'bulwark';
import { GENDERS, type Gender } from './domain/types.js';
import type { FeedEvent } from './store.js';
import { bucketOf, MAX_BUCKET, quantileMs } from './stats-histogram.js';

const MINUTE = 60_000;
/** Buckets kept: one hour. */
const SLOTS = 60;
/** Over how many minutes arrivals, waits and the imbalance are judged, and the match rate. */
export const RECENT_MINUTES = 15;
export const RATE_MINUTES = 5;
/** Fewer than this on both sides (arrivals) or matched (waits), and the series has no value. */
const MIN_SAMPLE = 5;
/** Fewer matches than this in the baseline, and the match rate has nothing to be compared to. */
const MIN_BASELINE = 10;
/** The imbalance series is kept within [1/CAP, CAP] (one side with no arrivals at all). */
const RATIO_CAP = 100;

/** One minute of activity. */
interface Slot {
  minute: number;
  /** Arrivals of men who seek women, and of women who seek men (the two sides of the imbalance). */
  menSeekingWomen: number;
  womenSeekingMen: number;
  /** Matched members per gender (two per match), and their waits by histogram bucket. */
  matched: Int32Array;
  waits: Int32Array;
  /** Outcome events (one per user of a settled match). */
  settled: number;
  success: number;
}

const newSlot = (minute: number): Slot => ({
  minute,
  menSeekingWomen: 0,
  womenSeekingMen: 0,
  matched: new Int32Array(GENDERS.length),
  waits: new Int32Array(GENDERS.length * (MAX_BUCKET + 1)),
  settled: 0,
  success: 0,
});

/** The last hour of the queue's activity (see the module comment). Times in ms since the epoch. */
export class RecentActivity {
  readonly #slots: Slot[] = Array.from({ length: SLOTS }, () => newSlot(-1));
  readonly #now: () => number;
  /** Since when events were seen (warm start included): rates are not taken over time not seen. */
  #since: number;

  constructor(now: () => number = Date.now, since = now()) {
    this.#now = now;
    this.#since = since;
  }

  /** Takes feed events (any order within the hour; older ones are ignored). */
  apply(events: readonly FeedEvent[]): void {
    for (const event of events) {
      if (event.type === 'reset') {
        for (const slot of this.#slots) slot.minute = -1;
        this.#since = event.at;
        continue;
      }
      const slot = this.#slot(event.at);
      if (slot === undefined) continue;
      const group = typeof event.data['group'] === 'string' ? event.data['group'] : '';
      const [gender = '', seeking = ''] = group.split(':');
      if (event.type === 'joined') {
        const sought = seeking.split('+');
        if (gender === 'man' && sought.includes('woman')) slot.menSeekingWomen += 1;
        if (gender === 'woman' && sought.includes('man')) slot.womenSeekingMen += 1;
      } else if (event.type === 'matched') {
        const index = GENDERS.indexOf(gender as Gender);
        if (index < 0) continue;
        slot.matched[index] = (slot.matched[index] ?? 0) + 1;
        const at = index * (MAX_BUCKET + 1) + bucketOf(Number(event.data['waitedMs'] ?? 0));
        slot.waits[at] = (slot.waits[at] ?? 0) + 1;
      } else if (event.type === 'outcome') {
        slot.settled += 1;
        if (event.data['outcome'] === 'success') slot.success += 1;
      }
    }
  }

  /** The bucket of `at`, reset if it held an older minute; undefined when `at` is over an hour old. */
  #slot(at: number): Slot | undefined {
    const minute = Math.floor(at / MINUTE);
    if (minute <= Math.floor(this.#now() / MINUTE) - SLOTS) return undefined;
    const index = minute % SLOTS;
    let slot = this.#slots[index] as Slot;
    if (slot.minute > minute) return undefined;
    if (slot.minute !== minute) this.#slots[index] = slot = newSlot(minute);
    return slot;
  }

  /**
   * The slots of the `minutes` minutes up to the current one (included) less `skip`, and the time
   * they cover in minutes (from the first one's start, or from when events were first seen, to now
   * or the last one's end; at least a minute, so that a rate is not taken over an instant).
   */
  #last(minutes: number, skip = 0): { slots: Slot[]; minutes: number } {
    const now = this.#now();
    const last = Math.floor(now / MINUTE) - skip;
    const first = last - minutes + 1;
    const slots = this.#slots.filter((slot) => slot.minute >= first && slot.minute <= last);
    const end = skip === 0 ? now : (last + 1) * MINUTE;
    const start = Math.max(this.#since, first * MINUTE);
    return { slots, minutes: Math.max(1, (end - start) / MINUTE) };
  }

  /** Arrivals per minute of men seeking women and women seeking men, over the recent minutes, with counts. */
  arrivals(minutes = RECENT_MINUTES): {
    men: number;
    women: number;
    perMinute: { men: number; women: number };
  } {
    const { slots, minutes: span } = this.#last(minutes);
    let men = 0;
    let women = 0;
    for (const slot of slots) {
      men += slot.menSeekingWomen;
      women += slot.womenSeekingMen;
    }
    return { men, women, perMinute: { men: men / span, women: women / span } };
  }

  /**
   * Men seeking women per woman seeking men among recent arrivals (within [0.01, 100]); undefined
   * when fewer than 5 arrived on each side.
   */
  menPerWoman(): number | undefined {
    const { men, women } = this.arrivals();
    if (men < MIN_SAMPLE && women < MIN_SAMPLE) return undefined;
    const ratio = women === 0 ? RATIO_CAP : men / women;
    return Math.min(RATIO_CAP, Math.max(1 / RATIO_CAP, ratio));
  }

  /** Matches (pairs) per minute over the last `minutes`, skipping the newest `skip` minutes. */
  matchesPerMinute(minutes = RATE_MINUTES, skip = 0): { perMinute: number; matches: number } {
    const { slots, minutes: span } = this.#last(minutes, skip);
    let sides = 0;
    for (const slot of slots) for (const n of slot.matched) sides += n;
    return { perMinute: sides / 2 / span, matches: sides / 2 };
  }

  /**
   * Matches per minute over the last 5 minutes and over the 55 before, and the first over the
   * second (1 = as usual): undefined until 10 matches were made in the baseline, or less than 15
   * minutes of it were seen.
   */
  matchRate(): { recent: number; baseline: number; ratio: number | undefined } {
    const recent = this.matchesPerMinute().perMinute;
    const baseline = this.matchesPerMinute(SLOTS - RATE_MINUTES, RATE_MINUTES);
    const known =
      baseline.matches >= MIN_BASELINE && this.#now() - this.#since >= (RATE_MINUTES + 10) * MINUTE;
    return { recent, baseline: baseline.perMinute, ratio: known ? recent / baseline.perMinute : undefined };
  }

  /** The p90 wait of the members of `gender` matched recently, ms; undefined below 5 matched. */
  p90WaitMs(gender: Gender, minutes = RECENT_MINUTES): number | undefined {
    const index = GENDERS.indexOf(gender);
    const counts = new Map<number, number>();
    let matched = 0;
    for (const slot of this.#last(minutes).slots) {
      matched += slot.matched[index] ?? 0;
      for (let b = 0; b <= MAX_BUCKET; b += 1) {
        const n = slot.waits[index * (MAX_BUCKET + 1) + b] ?? 0;
        if (n > 0) counts.set(b, (counts.get(b) ?? 0) + n);
      }
    }
    return matched < MIN_SAMPLE ? undefined : (quantileMs(counts, 0.9) ?? undefined);
  }

  /** Both liked, of the matches settled in the last hour; undefined below 5 settled. */
  successRatio(): number | undefined {
    let settled = 0;
    let success = 0;
    for (const slot of this.#last(SLOTS).slots) {
      settled += slot.settled;
      success += slot.success;
    }
    // Two outcome events per settled match.
    return settled / 2 < MIN_SAMPLE ? undefined : success / settled;
  }
}

/** Spin's series in the metrics history, and what each reads. */
export function spinSeries(
  activity: RecentActivity,
  waiting: () => Readonly<Record<Gender, number>>,
): Record<string, () => number | undefined> {
  const series: Record<string, () => number | undefined> = {
    'app.spin.matches_per_min': () => activity.matchesPerMinute().perMinute,
    'app.spin.match_rate_ratio': () => activity.matchRate().ratio,
    'app.spin.match_success_ratio': () => activity.successRatio(),
    'app.spin.men_per_woman': () => activity.menPerWoman(),
    'app.spin.arrivals_per_min{gender="man",seeking="woman"}': () => activity.arrivals().perMinute.men,
    'app.spin.arrivals_per_min{gender="woman",seeking="man"}': () => activity.arrivals().perMinute.women,
  };
  for (const gender of GENDERS) {
    series[`app.spin.waiting{gender="${gender}"}`] = () => waiting()[gender];
    series[`app.spin.wait_p90_ms{gender="${gender}"}`] = () => activity.p90WaitMs(gender);
  }
  return series;
}

/** Tuning of {@link spinAlertRules}. */
export interface SpinAlertOptions {
  /** The imbalance that fires, N in N:1 (default 3). */
  imbalanceRatio?: number;
  /** How long the imbalance must last (default 10 minutes). */
  imbalanceForMs?: number;
}

/**
 * Spin's default alert rules, on its series: a gender imbalance above N:1 among recent arrivals
 * (either way, sustained), and a match rate dropped below half of the last hour's. An operator's
 * rule with the same id replaces one (`withAlertRules`).
 */
export function spinAlertRules(options: SpinAlertOptions = {}): AlertRule[] {
  const n = options.imbalanceRatio ?? 3;
  const forMs = options.imbalanceForMs ?? 10 * MINUTE;
  const imbalance = (majority: string, minority: string) =>
    `Gender imbalance: ${majority} seeking ${minority} outnumber ${minority} seeking ${majority} more than ${n}:1 among arrivals of the last ${RECENT_MINUTES} minutes`;
  return [
    {
      id: 'spin.imbalance-men',
      kind: 'threshold',
      series: 'app.spin.men_per_woman',
      fireAbove: n,
      clearAbove: n * 0.8,
      forMs,
      severity: 'warning',
      summary: imbalance('men', 'women'),
      labels: { component: 'spin' },
    },
    {
      id: 'spin.imbalance-women',
      kind: 'threshold',
      series: 'app.spin.men_per_woman',
      fireBelow: 1 / n,
      clearBelow: 1 / (n * 0.8),
      forMs,
      severity: 'warning',
      summary: imbalance('women', 'men'),
      labels: { component: 'spin' },
    },
    {
      id: 'spin.match-rate-drop',
      kind: 'threshold',
      series: 'app.spin.match_rate_ratio',
      fireBelow: 0.5,
      clearBelow: 0.8,
      forMs: 5 * MINUTE,
      severity: 'warning',
      summary: `Match rate dropped: the last ${RATE_MINUTES} minutes below half of the hour before's pace`,
      labels: { component: 'spin' },
    },
  ];
}

// What the admin's queue dashboard recommends, in plain words with the numbers (seed 003: "User
// acquisition recommendations"). Each one is given only when what it says is true of the data.
import { genderPlural, formatDuration, formatRatio } from './domain/wording.js';
import type { GroupKey } from './domain/types.js';
import { summarise, type WaitCell, type WaitSummary } from './stats-windows.js';

/** One recommendation: a stable code and the sentence. */
export interface Advice {
  code: 'IMBALANCE' | 'LONG_WAIT' | 'LOW_SUCCESS' | 'MATCH_RATE_DROP';
  text: string;
}

/** What the recommendations are made from. */
export interface AdviceInput {
  /** Arrivals of men seeking women and of women seeking men, and over what (“in the last 24 h”). */
  arrivals: { men: number; women: number; over: string } | undefined;
  /** Who waits now, by gender. */
  waiting: Readonly<Record<'woman' | 'man' | 'nonbinary', number>>;
  /** The matches of the last 24 hours and of the last hour. */
  day: readonly WaitCell[];
  hour: readonly WaitCell[];
  /** Matches per minute now and over the hour before, and their ratio when known. */
  matchRate: { ratio: number | undefined; recent: number; baseline: number };
}

/** The lowest imbalance worth saying, and the fewest arrivals on the larger side to say it. */
const IMBALANCE_RATIO = 1.5;
const IMBALANCE_MIN_ARRIVALS = 10;
/** A p90 wait this long (ms), of at least this many matched, is worth saying. */
const LONG_WAIT_MS = 10 * 60_000;
const MIN_MATCHED = 5;
/** A success rate below this, of at least this many settled matches, is worth saying. */
const LOW_SUCCESS = 0.3;
const MIN_SETTLED = 20;

const percent = (ratio: number) => `${Math.round(ratio * 100)}%`;
const perMinute = (rate: number) => `${rate < 10 ? rate.toFixed(1) : Math.round(rate)} a minute`;

/** The recommendations that hold for `input`, most important first. */
export function recommendations(input: AdviceInput): Advice[] {
  const advice: Advice[] = [];
  const imbalanced = imbalance(input, advice);
  for (const gender of ['woman', 'man', 'nonbinary'] as const) {
    if (gender === imbalanced) continue;
    const hour = summarise(input.hour, (group) => group.startsWith(`${gender}:`));
    if (hour.matched < MIN_MATCHED || hour.p90WaitMs === null || hour.p90WaitMs < LONG_WAIT_MS) continue;
    advice.push({
      code: 'LONG_WAIT',
      text:
        `Waits for ${genderPlural(gender)} reached p90 ${formatDuration(hour.p90WaitMs)} in the last hour ` +
        `(${hour.matched} matched): look at whom they seek and who arrives.`,
    });
  }
  const day = summarise(input.day, () => true);
  // Each match is counted once per side.
  const settled = day.settled / 2;
  if (settled >= MIN_SETTLED && day.successRate !== null && day.successRate < LOW_SUCCESS)
    advice.push({
      code: 'LOW_SUCCESS',
      text:
        `Only ${percent(day.successRate)} of the ${settled} matches settled in the last 24 h were liked ` +
        `by both: look at who is paired with whom and why people pass.`,
    });
  const { ratio, recent, baseline } = input.matchRate;
  if (ratio !== undefined && ratio < 0.5)
    advice.push({
      code: 'MATCH_RATE_DROP',
      text:
        `Matches in the last 5 minutes came at ${percent(ratio)} of the hour's pace ` +
        `(${perMinute(recent)} against ${perMinute(baseline)}): check the matcher and arrivals.`,
    });
  return advice;
}

/** The imbalance recommendation, if any; resolves the gender on the long side. */
function imbalance(input: AdviceInput, advice: Advice[]): 'man' | 'woman' | undefined {
  if (input.arrivals === undefined) return undefined;
  const { men, women, over } = input.arrivals;
  const [long, short] = men >= women ? (['man', 'woman'] as const) : (['woman', 'man'] as const);
  const [many, few] = men >= women ? [men, women] : [women, men];
  if (many < IMBALANCE_MIN_ARRIVALS || (few > 0 && many / few < IMBALANCE_RATIO)) return undefined;
  const [longs, shorts] = [genderPlural(long), genderPlural(short)];
  const side = (gender: 'man' | 'woman', sought: 'man' | 'woman'): WaitSummary =>
    summarise(
      input.day,
      (group: GroupKey) => group.startsWith(`${gender}:`) && group.split(':')[1]!.split('+').includes(sought),
    );
  const waitOf = (gender: 'man' | 'woman', sought: 'man' | 'woman') => {
    const summary = side(gender, sought);
    return summary.matched >= MIN_MATCHED && summary.p90WaitMs !== null
      ? formatDuration(summary.p90WaitMs)
      : undefined;
  };
  const longWait = waitOf(long, short);
  const shortWait = waitOf(short, long);
  const stated =
    few === 0
      ? `No ${shorts} seeking ${longs} arrived ${over}, against ${many} ${longs} seeking ${shorts}`
      : `${capitalise(longs)} outnumber ${shorts} ${formatRatio(many / few)} among arrivals ${over}`;
  const waits =
    longWait === undefined
      ? `too few ${longs} were matched in the last 24 h to quote their wait`
      : `waits for ${longs} p90 ${longWait}${shortWait === undefined ? '' : ` (${shorts} ${shortWait})`}`;
  const now = input.waiting[long];
  const queue = now === 0 ? '' : `, ${now} ${now === 1 ? long : longs} waiting now`;
  advice.push({
    code: 'IMBALANCE',
    text: `${stated}: ${waits}${queue}. Bring in more ${shorts} (campaigns, referrals), and show ${longs} the likely wait before they join.`,
  });
  return long;
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

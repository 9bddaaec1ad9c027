import { GROUP_INDEXES, GROUP_SLOTS, GROUPS, groupIndex, groupsCompatible } from './groups.js';
import { GroupHistory, type HistorySums } from './history.js';
import { waitMoments, waitPercentiles } from './quantiles.js';
import { EstimateReason, type Gender, type Group, type WaitEstimate } from './types.js';
import {
  formatDuration,
  formatFrequency,
  formatRange,
  formatRatio,
  genderPlural,
  ordinal,
} from './wording.js';

/** Tuning of {@link WaitStats}; every field has a default. Times in ms. */
export interface WaitStatsOptions {
  /** How far back history counts (default 30 minutes). A whole number of buckets. */
  readonly windowMs?: number;
  /** Width of one history bucket (default 1 minute): memory is window / bucket counters per group. */
  readonly bucketMs?: number;
  /** Age at which an event weighs half as much as a fresh one (default 5 minutes). */
  readonly halfLifeMs?: number;
  /**
   * Fewer matches than this of members who had waited for their partner in the window, and the
   * group's estimate is unknown (default 5).
   */
  readonly minMatches?: number;
  /**
   * The most matches a pace is trusted as resting on (default 15): however many were seen, the
   * range is as wide as if the pace were measured from this many. Paces drift while people wait
   * (rivals in other groups come and go, arrivals rise and fall), more than a steady Poisson
   * stream would. In the calibration replay (9 seeds) the cap moved the waits inside p10–p90,
   * among those who waited for a partner, from 80.1–84.9% to 82.4–87.3%.
   */
  readonly maxTrustedMatches?: number;
  /** How often the matcher runs (default 1 s): the wait of someone whose partner already waits. */
  readonly matchIntervalMs?: number;
  /** When observation began (default: the first event's time); earlier time does not count as quiet. */
  readonly since?: number;
}

/** What is known of one group at a moment, over the recent window, with recent events weighing more. */
export interface GroupRates {
  /** Smoothed arrivals of the group per minute. */
  readonly arrivalsPerMinute: number;
  /** Smoothed matches of the group's members per minute. */
  readonly matchesPerMinute: number;
  /**
   * Smoothed matches of members who had waited for their partner, per minute during which someone
   * of the group was waiting: the pace estimates use.
   */
  readonly servedPerBusyMinute: number;
  /** Smoothed chance per minute that one waiting member leaves unmatched. */
  readonly leavesPerWaitingMinute: number;
  /** Matches of the group in the window (not weighted). */
  readonly matchesInWindow: number;
  /** Of those, the matches of members who had waited for their partner. */
  readonly servedInWindow: number;
  /** Time of the group's last match seen, or null if none since observation began. */
  readonly lastMatchAt: number | null;
}

/** Extra facts for {@link WaitStats.estimate}. */
export interface EstimateContext {
  /**
   * Compatible partners waiting right now who are not yet paired (default 0). After a matcher round
   * it is 0 for everyone still waiting; it matters between a join and the next round.
   */
  readonly partnersWaiting?: number;
}

// Minimum recent arrivals on this side before an imbalance is stated, and the ratio that counts as one.
const IMBALANCE_MIN_ARRIVALS = 5;
const IMBALANCE_RATIO = 1.5;

/**
 * Recent arrival, match and leave rates per wait group, and the wait estimates they support.
 *
 * Fed events as they happen, in time order (at start-up, feed `arrived` for everyone already
 * waiting), it keeps one ring of time buckets per group, so memory is fixed (21 groups × window /
 * bucket counters); events older than the window are ignored. Rates are exponentially smoothed over
 * the window. It has no clock: every call takes the time. Not shared between processes: each
 * instance feeds its own, or rebuilds one from stored history.
 */
export class WaitStats {
  readonly #windowMs: number;
  readonly #halfLifeMs: number;
  readonly #minMatches: number;
  readonly #maxTrustedMatches: number;
  readonly #matchIntervalMs: number;
  #since: number | null;
  readonly #groups: GroupHistory[];
  readonly #cache: (HistorySums | undefined)[] = new Array<HistorySums | undefined>(GROUP_SLOTS);
  readonly #imbalances: (string | null | undefined)[] = new Array<string | null | undefined>(GROUP_SLOTS);
  #cachedAt = NaN;

  constructor(options: WaitStatsOptions = {}) {
    const bucketMs = options.bucketMs ?? 60_000;
    const buckets = Math.ceil((options.windowMs ?? 30 * 60_000) / bucketMs);
    this.#windowMs = buckets * bucketMs;
    this.#halfLifeMs = options.halfLifeMs ?? 5 * 60_000;
    this.#minMatches = options.minMatches ?? 5;
    this.#maxTrustedMatches = options.maxTrustedMatches ?? 15;
    this.#matchIntervalMs = options.matchIntervalMs ?? 1000;
    this.#since = options.since ?? null;
    this.#groups = Array.from({ length: GROUP_SLOTS }, () => new GroupHistory(buckets, bucketMs));
  }

  #history(group: Group, at: number): GroupHistory {
    this.#since ??= at;
    this.#cachedAt = NaN;
    return this.#groups[groupIndex(group)] as GroupHistory;
  }

  /** Someone of `group` joined the queue at `at` (ms). */
  arrived(group: Group, at: number): void {
    const history = this.#history(group, at);
    history.add('arrivals', at);
    history.occupancy(1, at);
  }

  /** Someone of `group` was matched at `at` after waiting `waitedMs`. Call once for each side of a pair. */
  matched(group: Group, at: number, waitedMs: number): void {
    const history = this.#history(group, at);
    if (history.add('matches', at)) {
      history.add('waited', at, Math.max(0, waitedMs));
      if (waitedMs > this.#matchIntervalMs) history.add('served', at);
    }
    history.occupancy(-1, at);
    if (history.lastMatchAt === null || at > history.lastMatchAt) history.lastMatchAt = at;
  }

  /** Someone of `group` left the queue unmatched at `at` after waiting `waitedMs`. */
  left(group: Group, at: number, waitedMs: number): void {
    const history = this.#history(group, at);
    if (history.add('leaves', at)) history.add('waited', at, Math.max(0, waitedMs));
    history.occupancy(-1, at);
  }

  // Estimating every waiter at one moment reads each group's sums (and imbalance) once: they are
  // kept until the time asked for or the history changes.
  #fresh(now: number): void {
    if (this.#cachedAt === now) return;
    this.#cache.fill(undefined);
    this.#imbalances.fill(undefined);
    this.#cachedAt = now;
  }

  #sums(index: number, now: number): HistorySums {
    this.#fresh(now);
    const since = this.#since ?? now;
    return (this.#cache[index] ??= (this.#groups[index] as GroupHistory).sums(now, since, this.#halfLifeMs));
  }

  /** The group's recent rates at `now`. */
  rates(group: Group, now: number): GroupRates {
    const index = groupIndex(group);
    const sum = this.#sums(index, now);
    const perMinute = (count: number, time: number): number => (time > 0 ? (count / time) * 60_000 : 0);
    return {
      arrivalsPerMinute: perMinute(sum.arrivals, sum.time),
      matchesPerMinute: perMinute(sum.matches, sum.time),
      servedPerBusyMinute: perMinute(sum.served, sum.busy),
      leavesPerWaitingMinute: perMinute(sum.leaves, sum.waited),
      matchesInWindow: sum.matchCount,
      servedInWindow: sum.servedCount,
      lastMatchAt: (this.#groups[index] as GroupHistory).lastMatchAt,
    };
  }

  /**
   * The wait ahead of someone of `group` who is `position`-th (1 = first) among the waiting members
   * of their group, at `now` (ms), assuming they stay.
   *
   * Model — Little's law on the group's smoothed match rate λ, taken while the group has someone
   * waiting (matches of members who waited for their partner, per minute of such time: the pace at
   * which partners come along for a waiting member, whichever side is scarce). With k = people ahead
   * + 1, the wait is the time to the k-th such match, Erlang(k, λ); people ahead who leave (at the
   * group's recent leave rate) shorten it; and since λ is estimated from the window's n matches, the
   * range widens when n is small (see quantiles.ts). Unknown (figures null, `estimateKnown` false)
   * when fewer than `minMatches` members were matched after waiting in the window; the sentence then
   * says what is known.
   */
  estimate(group: Group, position: number, now: number, context: EstimateContext = {}): WaitEstimate {
    const place = Math.max(1, Math.floor(position));
    const partners = Math.max(0, Math.floor(context.partnersWaiting ?? 0));
    const index = groupIndex(group);
    const sum = this.#sums(index, now);
    // Members of a group that seeks its own kind are partners, not rivals: with one of them waiting
    // (after a matcher round there is at most one) the next round pairs them.
    const rivalsAhead = groupsCompatible(group, group) ? 0 : place - 1;
    if (partners > rivalsAhead) {
      const interval = this.#matchIntervalMs;
      return {
        estimateKnown: true,
        p10Ms: 0,
        p50Ms: Math.round(interval / 2),
        p90Ms: interval,
        sampleSize: sum.servedCount,
        reason: EstimateReason.PARTNER_WAITING,
        sentence: `A compatible partner is waiting: you will be matched within ${formatDuration(interval)}.`,
      };
    }
    const ahead = place - 1;
    const line = ahead === 0 ? 'You are next in line' : `You are ${ordinal(place)} in line`;
    if (sum.servedCount < Math.max(1, this.#minMatches) || sum.busy <= 0) {
      return this.#unknown(index, now, sum, line);
    }
    const rate = sum.served / sum.busy;
    const leaveRate = sum.waited > 0 ? sum.leaves / sum.waited : 0;
    const moments = waitMoments(rivalsAhead - partners, rate, leaveRate);
    // The effective sample of the smoothed pace (recent matches weigh more, so it is below their count).
    const samples = Math.min(this.#maxTrustedMatches, (sum.served * sum.served) / sum.servedSquared);
    const { p10, p50, p90 } = waitPercentiles(moments.shape, samples, moments.mean);
    const range = `Likely ${formatRange(p10, p90)}`;
    const pace = `a partner for your group comes along ${formatFrequency(rate)}`;
    const people = ahead === 1 ? '1 person seeking your match is' : `${ahead} people seeking your match are`;
    const queue = ahead === 0 ? `you are next in line; ${pace}` : `${people} ahead of you; ${pace}`;
    this.#fresh(now);
    const imbalance = (this.#imbalances[index] ??= this.#imbalance(index, now));
    return {
      estimateKnown: true,
      p10Ms: Math.round(p10),
      p50Ms: Math.round(p50),
      p90Ms: Math.round(p90),
      sampleSize: sum.servedCount,
      reason: imbalance
        ? EstimateReason.IMBALANCE
        : ahead === 0
          ? EstimateReason.NEXT_IN_LINE
          : EstimateReason.PARTNERS_AHEAD,
      sentence: imbalance ? `${range}: ${imbalance}; ${queue}.` : `${range}: ${queue}.`,
    };
  }

  #unknown(index: number, now: number, sum: HistorySums, line: string): WaitEstimate {
    const observed = Math.max(1000, now - (this.#since ?? now));
    const window = formatDuration(Math.min(this.#windowMs, observed));
    const lastMatchAt = (this.#groups[index] as GroupHistory).lastMatchAt;
    const last =
      lastMatchAt === null
        ? `none in the ${formatDuration(observed)} observed`
        : `the last ${formatDuration(now - lastMatchAt)} ago`;
    const unknown = { estimateKnown: false, p10Ms: null, p50Ms: null, p90Ms: null } as const;
    if (sum.matchCount === 0) {
      return {
        ...unknown,
        sampleSize: 0,
        reason: EstimateReason.NO_RECENT_MATCHES,
        sentence: `No estimate: nobody seeking your match has been matched in the last ${window} (${last}). ${line}.`,
      };
    }
    if (sum.servedCount === 0) {
      // Matched, but each at once (a partner was already waiting): no wait to go by, and "only 0
      // people had to wait" would read as a contradiction of the matches.
      return {
        ...unknown,
        sampleSize: 0,
        reason: EstimateReason.NOT_ENOUGH_DATA,
        sentence:
          `No estimate yet: everyone seeking your match in the last ${window} was paired at once, a partner ` +
          `already waiting (${sum.matchCount} matched, ${last}), so there is no wait to go by. ${line}.`,
      };
    }
    const waited = sum.servedCount === 1 ? 'only 1 person' : `only ${sum.servedCount} people`;
    return {
      ...unknown,
      sampleSize: sum.servedCount,
      reason: EstimateReason.NOT_ENOUGH_DATA,
      sentence:
        `No estimate yet: ${waited} seeking your match had to wait for a partner in the last ${window}, ` +
        `too few to give a range (${sum.matchCount} matched in all, ${last}). ${line}.`,
    };
  }

  /**
   * "men outnumber women 3:1 among recent arrivals" when, for every gender this group seeks (other
   * than its own), recent arrivals of its gender seeking that gender outnumber those of that gender
   * seeking its gender by at least 1.5:1 (with at least 5 arrivals on this side); the least lopsided
   * ratio is quoted (the one this group's members are best off with). Otherwise null.
   */
  #imbalance(index: number, now: number): string | null {
    const group = GROUPS[index] as Group;
    // Arrivals (weighted, and counted) of those of `gender` who seek `sought`, over every such group.
    const side = (gender: Gender, sought: Gender): { weighted: number; count: number } => {
      let weighted = 0;
      let count = 0;
      for (const i of GROUP_INDEXES) {
        const other = GROUPS[i] as Group;
        if (other.gender !== gender || !other.seeking.includes(sought)) continue;
        const sum = this.#sums(i, now);
        weighted += sum.arrivals;
        count += sum.arrivalCount;
      }
      return { weighted, count };
    };
    let best: { ratio: number; partner: Gender } | null = null;
    for (const partner of group.seeking) {
      if (partner === group.gender) return null; // a same-gender pool has no other side
      const ours = side(group.gender, partner);
      const theirs = side(partner, group.gender);
      if (ours.count < IMBALANCE_MIN_ARRIVALS) return null;
      const ratio = theirs.count === 0 ? Infinity : ours.weighted / theirs.weighted;
      if (best === null || ratio < best.ratio) best = { ratio, partner };
    }
    if (best === null || best.ratio < IMBALANCE_RATIO) return null;
    const [ours, theirs] = [genderPlural(group.gender), genderPlural(best.partner)];
    return Number.isFinite(best.ratio)
      ? `${ours} outnumber ${theirs} ${formatRatio(best.ratio)} among recent arrivals`
      : `no ${theirs} seeking ${ours} arrived recently`;
  }
}

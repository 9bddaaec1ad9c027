/**
 * Replays simulated arrivals through the real matcher and estimator on a simulated clock, the way the
 * service runs them: the matcher every second, each join shown an estimate, every event fed back to
 * the statistics. Records, for each join, the estimate shown and what then happened.
 */
import { WaitStats, type WaitStatsOptions } from '../src/domain/estimate.js';
import { compatible, pickMatches } from '../src/domain/matcher.js';
import type { SimulatedArrival } from '../src/domain/simulate.js';
import type { WaitEstimate, Waiter } from '../src/domain/types.js';
import { groupIndex } from '../src/domain/groups.js';

export interface JoinRecord {
  readonly arrival: SimulatedArrival;
  readonly estimate: WaitEstimate;
  /** When they were matched or left; null if still waiting when the replay stopped. */
  endedAt: number | null;
  outcome: 'matched' | 'left' | 'waiting';
}

export interface ReplayOptions {
  /** Joins before this time are recorded; later ones only keep the queue realistic. */
  readonly measureUntil: number;
  /** The replay stops here at the latest (it stops earlier once every recorded join has ended). */
  readonly stopAt: number;
  readonly stats?: WaitStatsOptions;
  readonly matchEveryMs?: number;
}

/** Runs the replay; returns one record per join before `measureUntil`. */
export function replay(arrivals: readonly SimulatedArrival[], options: ReplayOptions): JoinRecord[] {
  const every = options.matchEveryMs ?? 1000;
  const stats = new WaitStats({ matchIntervalMs: every, since: 0, ...options.stats });
  const waiting = new Map<string, { arrival: SimulatedArrival; record: JoinRecord | null }>();
  const records: JoinRecord[] = [];
  let open = 0;
  const end = (entry: { record: JoinRecord | null }, at: number, outcome: 'matched' | 'left'): void => {
    if (entry.record === null) return;
    entry.record.endedAt = at;
    entry.record.outcome = outcome;
    open -= 1;
  };
  const leaveUntil = (now: number): void => {
    for (const [userId, entry] of waiting) {
      const leavesAt = entry.arrival.waiter.joinedAt + entry.arrival.patienceMs;
      if (leavesAt > now) continue;
      waiting.delete(userId);
      stats.left(entry.arrival.waiter, leavesAt, entry.arrival.patienceMs);
      end(entry, leavesAt, 'left');
    }
  };
  let next = 0;
  for (let tick = every; tick <= options.stopAt; tick += every) {
    for (
      ;
      next < arrivals.length && (arrivals[next] as SimulatedArrival).waiter.joinedAt <= tick;
      next += 1
    ) {
      const arrival = arrivals[next] as SimulatedArrival;
      const joiner = arrival.waiter;
      leaveUntil(joiner.joinedAt);
      let position = 1;
      let partnersWaiting = 0;
      const group = groupIndex(joiner);
      for (const { arrival: other } of waiting.values()) {
        if (groupIndex(other.waiter) === group) position += 1;
        if (compatible(joiner, other.waiter)) partnersWaiting += 1;
      }
      const estimate = stats.estimate(joiner, position, joiner.joinedAt, { partnersWaiting });
      stats.arrived(joiner, joiner.joinedAt);
      let record: JoinRecord | null = null;
      if (joiner.joinedAt < options.measureUntil) {
        record = { arrival, estimate, endedAt: null, outcome: 'waiting' };
        records.push(record);
        open += 1;
      }
      waiting.set(joiner.userId, { arrival, record });
    }
    leaveUntil(tick);
    const queue: Waiter[] = [...waiting.values()].map((entry) => entry.arrival.waiter);
    for (const pair of pickMatches(queue)) {
      for (const waiter of [pair.first, pair.second]) {
        const entry = waiting.get(waiter.userId);
        if (!entry) continue;
        waiting.delete(waiter.userId);
        stats.matched(waiter, tick, tick - waiter.joinedAt);
        end(entry, tick, 'matched');
      }
    }
    if (tick >= options.measureUntil && open === 0) break;
  }
  return records;
}

/** How the shown ranges compared with what happened. */
export interface Calibration {
  /** Joins recorded. */
  readonly joins: number;
  /** Share of joins shown a known estimate. */
  readonly knownShare: number;
  /** Known estimates whose outcome is determinable: matched, or left after their p90 had passed. */
  readonly judged: number;
  /** Share of `judged` whose actual wait fell inside p10–p90. */
  readonly coverage: number;
  /** The same for estimates other than PARTNER_WAITING (someone had to wait for a partner). */
  readonly waitedJudged: number;
  readonly waitedCoverage: number;
  /** Actual waits below p10 and above p90, as shares of `judged`. */
  readonly below: number;
  readonly above: number;
}

/** Scores the known estimates of records joined at or after `from` (to skip the warm-up). */
export function calibration(records: readonly JoinRecord[], from = 0): Calibration {
  const considered = records.filter((r) => r.arrival.waiter.joinedAt >= from);
  let judged = 0;
  let inside = 0;
  let below = 0;
  let above = 0;
  let waitedJudged = 0;
  let waitedInside = 0;
  for (const record of considered) {
    const { estimate, arrival } = record;
    if (!estimate.estimateKnown || estimate.p10Ms === null || estimate.p90Ms === null) continue;
    // A wait is known when matched; someone who gave up after p90 would have waited longer than p90.
    let wait: number;
    if (record.outcome === 'matched' && record.endedAt !== null)
      wait = record.endedAt - arrival.waiter.joinedAt;
    else if (record.outcome === 'left' && arrival.patienceMs > estimate.p90Ms) wait = Infinity;
    else continue;
    judged += 1;
    const hit = wait >= estimate.p10Ms && wait <= estimate.p90Ms;
    if (hit) inside += 1;
    else if (wait < estimate.p10Ms) below += 1;
    else above += 1;
    if (estimate.reason !== 'PARTNER_WAITING') {
      waitedJudged += 1;
      if (hit) waitedInside += 1;
    }
  }
  return {
    joins: considered.length,
    knownShare: considered.filter((r) => r.estimate.estimateKnown).length / Math.max(1, considered.length),
    judged,
    coverage: inside / Math.max(1, judged),
    waitedJudged,
    waitedCoverage: waitedInside / Math.max(1, waitedJudged),
    below: below / Math.max(1, judged),
    above: above / Math.max(1, judged),
  };
}

/** How bad an alert is. */
export type Severity = 'critical' | 'warning' | 'info';

/**
 * An alert rule over one metrics-history series (see docs/metrics-history.md for series names).
 * - `threshold`: fires when the value is above `fireAbove` (or below `fireBelow`) for `forMs`;
 *   clears only when it is back below `clearAbove` (above `clearBelow`): the gap is hysteresis.
 * - `absence`: fires when the series has no point for `forMs` (a heartbeat that stopped).
 * - `anomaly`: fires when the value leaves a band around a seasonal baseline for `forMs`
 *   (src/alerts/anomaly.ts; docs/alerting.md#anomaly-rules); the `anomaly fields` below.
 */
export interface AlertRule {
  /** Stable id: letters, digits, `.`, `_`, `-`. */
  id: string;
  kind: 'threshold' | 'absence' | 'anomaly';
  series: string;
  /**
   * The value judged: the newest point's average over `windowMs` (default: the last point; 60 s for
   * an anomaly rule).
   */
  windowMs?: number;
  fireAbove?: number;
  clearAbove?: number;
  fireBelow?: number;
  clearBelow?: number;
  /** How long the condition must hold before firing (default 0). */
  forMs?: number;
  /** Anomaly: which side of the band fires (default `both`). */
  direction?: 'above' | 'below' | 'both';
  /** Anomaly: the band's half-width in robust standard deviations (default 3). */
  k?: number;
  /** Anomaly: a firing alert clears once back within this many (default k − 1, at least 1). */
  clearK?: number;
  /** Anomaly: previous days whose same time makes the seasonal baseline (default 7). */
  seasonDays?: number;
  /** Anomaly: days with points at this time needed before it can fire (default 3; 0: EWMA only). */
  minDays?: number;
  /** Anomaly: recent points needed before it can fire (default 30). */
  minSamples?: number;
  /** Anomaly: how far back the recent points go, ms (default 1 h). */
  recentMs?: number;
  /** Anomaly: half-life of the recent points' EWMA, ms (default 15 min). */
  halfLifeMs?: number;
  /** Anomaly: weight of the seasonal median against the EWMA, 0 to 1 (default 0.5). */
  seasonWeight?: number;
  /** Anomaly: the band is never narrower than this, in the series' unit (default 0). */
  minBand?: number;
  /** Anomaly: nor than this share of the baseline (default 0.05). */
  minBandRatio?: number;
  severity: Severity;
  summary: string;
  labels?: Record<string, string>;
  /**
   * A recovery step on firing, recorded in the audit log: a flag's kill switch (e.g. a feature, or
   * `bulwark.redis`), pausing a job queue on every instance (shedding background work), or a log line.
   */
  action?: { type: 'flag.kill'; flag: string } | { type: 'queue.pause'; queue: string } | { type: 'log' };
}

/** The limits a value is judged against (as a threshold rule's, moving with the baseline). */
export interface Limits {
  fireAbove?: number;
  clearAbove?: number;
  fireBelow?: number;
  clearBelow?: number;
}

/** What an anomaly rule computed at one evaluation, shown with its state. */
export interface AnomalyDetail {
  /** Undefined when there is no baseline yet (`reason` says why). */
  baseline?: number;
  /** Half-width of the firing band. */
  band?: number;
  /** The same time on previous days that had points, and the recent points used. */
  days: number;
  samples: number;
  reason?: string;
}

/** A value with the limits it is judged against, or no value and why (what the engine judges). */
export interface Judged {
  value: number | undefined;
  limits: Limits;
  detail: AnomalyDetail;
}

/** The state of one rule: `nodata` when a threshold rule has no point to judge, `error` when evaluation failed. */
export type AlertState = 'inactive' | 'pending' | 'firing' | 'nodata' | 'error';

/** A rule's state as kept between evaluations. */
export interface RuleStatus {
  state: AlertState;
  /** When the current state began (pending: when the condition started to hold). */
  since: number;
  value: number | undefined;
  /** Transitions to firing or back to resolved so far: part of each notification's idempotency key. */
  transitions: number;
}

/** What one evaluation did. */
export interface Evaluation {
  status: RuleStatus;
  /** Set when the rule started or stopped firing: notify. */
  transition?: 'firing' | 'resolved';
}

/** The first status of a rule. */
export function initialStatus(now: number): RuleStatus {
  return { state: 'inactive', since: now, value: undefined, transitions: 0 };
}

/** A rule's status as stored in its `bulwark_alerts` row (the first status when there is none). */
export function storedStatus(
  row: { state: string; since: number; value: number | null; transitions: number } | undefined,
  now: number,
): RuleStatus {
  if (row === undefined) return initialStatus(now);
  return {
    state: row.state as AlertState,
    since: Number(row.since),
    value: row.value ?? undefined,
    transitions: Number(row.transitions),
  };
}

function breaching(rule: Limits, value: number, firing: boolean): boolean {
  if (rule.fireAbove !== undefined) {
    const limit = firing ? (rule.clearAbove ?? rule.fireAbove) : rule.fireAbove;
    if (firing ? value >= limit : value > limit) return true;
  }
  if (rule.fireBelow !== undefined) {
    const limit = firing ? (rule.clearBelow ?? rule.fireBelow) : rule.fireBelow;
    if (firing ? value <= limit : value < limit) return true;
  }
  return false;
}

/**
 * One step of a rule's state machine (pure). `value` is the judged value, undefined when the series
 * had no point in the window, or an Error when it could not be read; for an anomaly rule, the value
 * with the limits of its band ({@link Judged}: no value when there is no baseline yet).
 * - inactive → pending when the condition holds; pending → firing after `forMs` (notify `firing`);
 *   pending → inactive when it stops holding before that.
 * - firing stays firing while the value is beyond the clear threshold (hysteresis), → inactive
 *   (notify `resolved`) once it is not.
 * - no data: an absence rule counts it as its condition; a threshold rule goes `nodata` (a firing
 *   one keeps firing: missing data does not resolve an alert). A read error is state `error`,
 *   which also keeps a firing alert firing.
 */
export function evaluateRule(
  rule: AlertRule,
  previous: RuleStatus,
  judged: number | undefined | Error | Judged,
  now: number,
): Evaluation {
  const value = typeof judged === 'object' && !(judged instanceof Error) ? judged.value : judged;
  const limits: Limits = typeof judged === 'object' && !(judged instanceof Error) ? judged.limits : rule;
  const firing = previous.state === 'firing';
  const keep = (state: AlertState, v: number | undefined): Evaluation => ({
    status: { ...previous, state, value: v, since: previous.state === state ? previous.since : now },
  });
  if (value instanceof Error) return firing ? keep('firing', previous.value) : keep('error', undefined);
  let holds: boolean;
  if (rule.kind === 'absence') holds = value === undefined;
  else if (value === undefined) return firing ? keep('firing', undefined) : keep('nodata', undefined);
  else holds = breaching(limits, value, firing);
  if (firing) {
    if (holds) return keep('firing', value);
    return {
      status: { state: 'inactive', since: now, value, transitions: previous.transitions + 1 },
      transition: 'resolved',
    };
  }
  if (!holds) return keep('inactive', value);
  const pendingSince = previous.state === 'pending' ? previous.since : now;
  if (now - pendingSince >= (rule.forMs ?? 0))
    return {
      status: { state: 'firing', since: now, value, transitions: previous.transitions + 1 },
      transition: 'firing',
    };
  return { status: { ...previous, state: 'pending', since: pendingSince, value } };
}

/** How bad an alert is. */
export type Severity = 'critical' | 'warning' | 'info';

/**
 * An alert rule over one metrics-history series (see docs/metrics-history.md for series names).
 * - `threshold`: fires when the value is above `fireAbove` (or below `fireBelow`) for `forMs`;
 *   clears only when it is back below `clearAbove` (above `clearBelow`): the gap is hysteresis.
 * - `absence`: fires when the series has no point for `forMs` (a heartbeat that stopped).
 */
export interface AlertRule {
  /** Stable id: letters, digits, `.`, `_`, `-`. */
  id: string;
  kind: 'threshold' | 'absence';
  series: string;
  /** The value judged: the newest point's average over `windowMs` (default: the last point). */
  windowMs?: number;
  fireAbove?: number;
  clearAbove?: number;
  fireBelow?: number;
  clearBelow?: number;
  /** How long the condition must hold before firing (default 0). */
  forMs?: number;
  severity: Severity;
  summary: string;
  labels?: Record<string, string>;
  /**
   * A recovery step on firing, recorded in the audit log: a flag's kill switch (e.g. a feature, or
   * `bulwark.redis`), pausing a job queue on every instance (shedding background work), or a log line.
   */
  action?: { type: 'flag.kill'; flag: string } | { type: 'queue.pause'; queue: string } | { type: 'log' };
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

function breaching(rule: AlertRule, value: number, firing: boolean): boolean {
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
 * had no point in the window, or an Error when it could not be read.
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
  value: number | undefined | Error,
  now: number,
): Evaluation {
  const firing = previous.state === 'firing';
  const keep = (state: AlertState, v: number | undefined): Evaluation => ({
    status: { ...previous, state, value: v, since: previous.state === state ? previous.since : now },
  });
  if (value instanceof Error) return firing ? keep('firing', previous.value) : keep('error', undefined);
  let holds: boolean;
  if (rule.kind === 'absence') holds = value === undefined;
  else if (value === undefined) return firing ? keep('firing', undefined) : keep('nodata', undefined);
  else holds = breaching(rule, value, firing);
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

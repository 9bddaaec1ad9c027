/** JSON values a flag variant can hold. */
export type FlagValue = boolean | string | number | null | FlagValue[] | { [key: string]: FlagValue };

/** The type of a flag; every variant of the flag holds a value of this type. */
export type FlagType = 'boolean' | 'string' | 'number' | 'json';

/** Attributes of whoever a flag is evaluated for. `targetingKey` is what percentage rollouts hash. */
export interface EvaluationContext {
  targetingKey?: string;
  [attribute: string]: unknown;
}

/** Comparison of one context attribute with the rule's values. */
export type RuleOperator =
  | 'eq'
  | 'neq'
  | 'in'
  | 'notIn'
  | 'contains'
  | 'startsWith'
  | 'endsWith'
  | 'gt'
  | 'gte'
  | 'lt'
  | 'lte'
  | 'exists';

/** One condition: `context[attribute] <op> values`. */
export interface Condition {
  attribute: string;
  op: RuleOperator;
  /** Compared values (`in`/`notIn` match any; others use the first); absent for `exists`. */
  values?: (string | number | boolean)[];
}

/** A targeting rule: when every condition holds, serve `variant` (or split by `rollout`). */
export interface TargetingRule {
  /** Shown in evaluation details and the audit log. */
  name?: string;
  conditions: Condition[];
  /** The variant served on a match (exactly one of `variant` and `rollout`). */
  variant?: string;
  rollout?: Rollout;
}

/**
 * A percentage rollout: `percentage` (0–100, any fraction down to 0.0001) of targeting keys get
 * `variant`, the others `otherwise`. Membership is monotonic: raising the percentage never removes
 * anyone, lowering it removes the most recently added first (a key is in while its bucket, a stable
 * hash of flag key and targeting key over 10⁶ buckets, is below percentage × 10⁴).
 */
export interface Rollout {
  variant: string;
  otherwise: string;
  percentage: number;
}

/** A flag as stored and evaluated. */
export interface FlagDefinition {
  key: string;
  type: FlagType;
  description?: string;
  /** Named values; every rule, rollout and default names one of them. */
  variants: Record<string, FlagValue>;
  /** Served when no rule matches (and no top-level rollout is set). */
  defaultVariant: string;
  /** Kill switch: `false` serves `offVariant` to everyone, ignoring rules and rollouts. */
  enabled: boolean;
  /** Served while the flag is off (default: `defaultVariant`). */
  offVariant?: string;
  /** Evaluated in order; the first whose conditions all hold decides. */
  rules?: TargetingRule[];
  /** Applies when no rule matched: a split of everyone else. */
  rollout?: Rollout;
}

/** Why an evaluation returned what it did (OpenFeature's reasons). */
export type EvaluationReason = 'STATIC' | 'TARGETING_MATCH' | 'SPLIT' | 'DISABLED' | 'DEFAULT' | 'ERROR';

/** Why an evaluation failed (OpenFeature's error codes). */
export type EvaluationErrorCode =
  'FLAG_NOT_FOUND' | 'TYPE_MISMATCH' | 'PARSE_ERROR' | 'TARGETING_KEY_MISSING' | 'GENERAL';

/** The result of evaluating a flag. */
export interface EvaluationDetails<T extends FlagValue = FlagValue> {
  key: string;
  value: T;
  /** The variant served (absent when the caller's default was returned). */
  variant?: string;
  reason: EvaluationReason;
  /** The rule that matched, for TARGETING_MATCH. */
  rule?: string;
  errorCode?: EvaluationErrorCode;
  errorMessage?: string;
}

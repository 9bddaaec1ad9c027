import { inRollout } from './bucket.js';
import type {
  Condition,
  EvaluationContext,
  EvaluationDetails,
  EvaluationErrorCode,
  EvaluationReason,
  FlagDefinition,
  FlagType,
  FlagValue,
  Rollout,
} from './types.js';

/** Thrown inside this module for a definition that `validateFlag` would have refused. */
class MalformedFlag extends Error {}

/**
 * Evaluates a flag for one context. Pure and synchronous: no I/O, no parsing, one result object
 * allocated per call; safe on request paths.
 *
 * In order:
 * 1. no flag → the caller's `defaultValue`, `ERROR`/`FLAG_NOT_FOUND`;
 * 2. `expectedType` given and not the flag's type → `defaultValue`, `ERROR`/`TYPE_MISMATCH`;
 * 3. `enabled: false` (the kill switch, above every rule) → `offVariant ?? defaultVariant`, `DISABLED`;
 * 4. the first rule whose conditions all hold (no conditions: always) → its variant,
 *    `TARGETING_MATCH`, or its rollout's pick, `SPLIT`; `rule` is its `name` or `rule <index>`
 *    (0-based, as in `rules[<index>]`);
 * 5. no rule matched → the top-level rollout's pick, `SPLIT`, or else `defaultVariant`: `STATIC` when
 *    the flag has no rules and no rollout (nothing could have changed the answer), `DEFAULT` otherwise.
 *
 * A rollout hashes `context.targetingKey` (see `inRollout`); without a non-empty one the result is
 * `defaultValue`, `ERROR`/`TARGETING_KEY_MISSING`.
 *
 * Conditions compare `context[attribute]` (own properties only) with the condition's values:
 * `eq`/`neq` with `===` against the first value, `in`/`notIn` against any value, `contains`/
 * `startsWith`/`endsWith` a string attribute with a string value, `gt`/`gte`/`lt`/`lte` two numbers
 * or two strings (code-unit order, no locale; mixed types never match), `exists` the attribute being
 * neither `undefined` nor `null`. A missing (`undefined` or `null`) attribute satisfies no condition,
 * not even `neq` or `notIn`: missing matches nothing.
 *
 * Never throws. A definition naming a variant it does not define, a variant value not of the flag's
 * type, an unknown operator, a condition without values or a non-numeric percentage (data that
 * `validateFlag` refuses) → `defaultValue`, `ERROR`/`PARSE_ERROR`; anything else unexpected (a
 * throwing getter on the context, a rule without `conditions`) → `defaultValue`, `ERROR`/`GENERAL`;
 * both with an `errorMessage`. `json` values are returned as stored, not copied: treat them as
 * read-only.
 */
export function evaluate(
  flag: FlagDefinition | undefined,
  key: string,
  context: EvaluationContext,
  defaultValue: FlagValue,
  expectedType?: FlagType,
): EvaluationDetails {
  if (flag === undefined) return failure(key, defaultValue, 'FLAG_NOT_FOUND', `Flag ${key} does not exist`);
  try {
    if (expectedType !== undefined && expectedType !== flag.type) {
      return failure(
        key,
        defaultValue,
        'TYPE_MISMATCH',
        `Flag ${key} is of type ${flag.type}, not ${expectedType}`,
      );
    }
    if (flag.enabled === false) {
      return serve(flag, key, flag.offVariant ?? flag.defaultVariant, 'DISABLED', undefined, defaultValue);
    }
    // A JavaScript caller may pass no context at all; treat it as an empty one.
    const ctx: EvaluationContext = typeof context === 'object' && context !== null ? context : {};
    const rules = flag.rules;
    if (rules !== undefined) {
      for (let i = 0; i < rules.length; i++) {
        const rule = rules[i]!;
        if (!allHold(rule.conditions, ctx)) continue;
        const name = rule.name ?? `rule ${i}`;
        if (rule.rollout !== undefined) return split(flag, key, rule.rollout, ctx, name, defaultValue);
        return serve(flag, key, rule.variant, 'TARGETING_MATCH', name, defaultValue);
      }
    }
    if (flag.rollout !== undefined) return split(flag, key, flag.rollout, ctx, undefined, defaultValue);
    const targeted = rules !== undefined && rules.length > 0;
    return serve(flag, key, flag.defaultVariant, targeted ? 'DEFAULT' : 'STATIC', undefined, defaultValue);
  } catch (error) {
    return error instanceof MalformedFlag
      ? failure(key, defaultValue, 'PARSE_ERROR', `Flag ${key} is malformed: ${error.message}`)
      : failure(key, defaultValue, 'GENERAL', `Flag ${key} could not be evaluated: ${messageOf(error)}`);
  }
}

function split(
  flag: FlagDefinition,
  key: string,
  rollout: Rollout,
  context: EvaluationContext,
  rule: string | undefined,
  defaultValue: FlagValue,
): EvaluationDetails {
  const targetingKey = attribute(context, 'targetingKey');
  if (typeof targetingKey !== 'string' || targetingKey === '') {
    return failure(
      key,
      defaultValue,
      'TARGETING_KEY_MISSING',
      `Flag ${key} has a percentage rollout and the context has no targetingKey`,
    );
  }
  if (typeof rollout.percentage !== 'number') throw new MalformedFlag('rollout.percentage is not a number');
  const variant = inRollout(flag.key, targetingKey, rollout.percentage) ? rollout.variant : rollout.otherwise;
  return serve(flag, key, variant, 'SPLIT', rule, defaultValue);
}

function serve(
  flag: FlagDefinition,
  key: string,
  variant: string | undefined,
  reason: EvaluationReason,
  rule: string | undefined,
  defaultValue: FlagValue,
): EvaluationDetails {
  if (typeof variant !== 'string' || !Object.hasOwn(flag.variants, variant)) {
    return failure(
      key,
      defaultValue,
      'PARSE_ERROR',
      `Flag ${key} is malformed: it serves variant ${String(variant)}, which it does not define`,
    );
  }
  const value = flag.variants[variant];
  if (!isOfType(value, flag.type)) {
    return failure(
      key,
      defaultValue,
      'PARSE_ERROR',
      `Flag ${key} is malformed: variant ${variant} is not a ${flag.type}`,
    );
  }
  return rule === undefined ? { key, value, variant, reason } : { key, value, variant, reason, rule };
}

function failure(
  key: string,
  value: FlagValue,
  errorCode: EvaluationErrorCode,
  errorMessage: string,
): EvaluationDetails {
  return { key, value, reason: 'ERROR', errorCode, errorMessage };
}

function isOfType(value: FlagValue | undefined, type: FlagType): value is FlagValue {
  switch (type) {
    case 'boolean':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number';
    case 'json':
      return value !== undefined;
    default:
      return false;
  }
}

function allHold(conditions: Condition[], context: EvaluationContext): boolean {
  for (let i = 0; i < conditions.length; i++) {
    if (!holds(conditions[i]!, context)) return false;
  }
  return true;
}

/** An own property of the context: `constructor` or `toString` are not attributes of anyone. */
function attribute(context: EvaluationContext, name: string): unknown {
  return Object.hasOwn(context, name) ? context[name] : undefined;
}

function holds(condition: Condition, context: EvaluationContext): boolean {
  const actual = attribute(context, condition.attribute);
  if (actual === undefined || actual === null) return false;
  const op = condition.op;
  if (op === 'exists') return true;
  const values = condition.values;
  if (!Array.isArray(values)) throw new MalformedFlag(`a condition on ${condition.attribute} has no values`);
  const first: unknown = values[0];
  switch (op) {
    case 'eq':
      return actual === first;
    case 'neq':
      return actual !== first;
    case 'in':
      return includes(values, actual);
    case 'notIn':
      return !includes(values, actual);
    case 'contains':
      return typeof actual === 'string' && typeof first === 'string' && actual.includes(first);
    case 'startsWith':
      return typeof actual === 'string' && typeof first === 'string' && actual.startsWith(first);
    case 'endsWith':
      return typeof actual === 'string' && typeof first === 'string' && actual.endsWith(first);
    case 'gt':
      return comparable(actual, first) && (actual as number) > (first as number);
    case 'gte':
      return comparable(actual, first) && (actual as number) >= (first as number);
    case 'lt':
      return comparable(actual, first) && (actual as number) < (first as number);
    case 'lte':
      return comparable(actual, first) && (actual as number) <= (first as number);
    default:
      throw new MalformedFlag(`unknown operator ${String(op)}`);
  }
}

/** `===` membership (unlike `Array#includes`, NaN is not a member: it equals nothing, as in `eq`). */
function includes(values: readonly unknown[], actual: unknown): boolean {
  for (let i = 0; i < values.length; i++) {
    if (values[i] === actual) return true;
  }
  return false;
}

/** Two numbers, or two strings: the pairs `<` orders without coercion. */
function comparable(actual: unknown, expected: unknown): boolean {
  const type = typeof actual;
  return (type === 'number' || type === 'string') && typeof expected === type;
}

function messageOf(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    return 'unknown error';
  }
}

import { bulwarkError, type FieldProblem } from '../errors/index.js';
import type {
  Condition,
  FlagDefinition,
  FlagType,
  FlagValue,
  Rollout,
  RuleOperator,
  TargetingRule,
} from './types.js';

/** What a flag key looks like: lower case, digits, `.`, `_`, `-`; at most 128 characters. */
export const FLAG_KEY_PATTERN = /^[a-z0-9][a-z0-9._-]{0,127}$/;

const TYPES: readonly FlagType[] = ['boolean', 'string', 'number', 'json'];
/** Every rule operator, in documentation order. */
export const RULE_OPERATORS: readonly RuleOperator[] = [
  'eq',
  'neq',
  'in',
  'notIn',
  'contains',
  'startsWith',
  'endsWith',
  'gt',
  'gte',
  'lt',
  'lte',
  'exists',
];
const STRING_OPERATORS: ReadonlySet<RuleOperator> = new Set(['contains', 'startsWith', 'endsWith']);
const ORDER_OPERATORS: ReadonlySet<RuleOperator> = new Set(['gt', 'gte', 'lt', 'lte']);

/** JSON nesting deeper than this is refused (a guard against stack exhaustion, not a style rule). */
const MAX_JSON_DEPTH = 64;
/** Problems listed in one error; a body with thousands of bad rules does not get a megabyte message. */
const MAX_PROBLEMS = 20;

type Plain = Record<string, unknown>;

/**
 * Checks a flag definition from a file, the store or an API body and returns a clean copy: only the
 * known properties, fresh objects and arrays (json variant values deep-copied), so later changes to
 * `input` do not reach it.
 *
 * Refuses, with `BWK_ERR_FLAG_INVALID` whose `detail` names each offending field path (e.g.
 * `rules[1].conditions[0].op must be one of eq, neq, …`) and whose `details` list them as
 * `{ field, message }`: a key not matching {@link FLAG_KEY_PATTERN}; an unknown `type`; no variants,
 * or a variant value not of the type (`json`: any JSON value); a `defaultVariant`, `offVariant`, rule
 * variant or rollout variant the flag does not define; a non-boolean `enabled`; a non-string
 * `description`; a rule without a `conditions` array, or with both or neither of `variant` and
 * `rollout`; an unknown operator, an empty attribute, `values` not a non-empty array of strings,
 * finite numbers and booleans (required by every operator but `exists`), a non-string value for
 * `contains`/`startsWith`/`endsWith`, a boolean for `gt`/`gte`/`lt`/`lte`; a rollout percentage that
 * is not a finite number in [0, 100]. Optional properties are absent when `undefined`; `null` is
 * refused.
 */
export function validateFlag(input: unknown): FlagDefinition {
  const problems: FieldProblem[] = [];
  let count = 0;
  const report: Report = (field, message) => {
    count++;
    if (problems.length < MAX_PROBLEMS) problems.push({ field, message });
  };
  let key: unknown;
  if (isPlain(input)) {
    key = input['key'];
    const flag = check(input, report);
    if (flag !== undefined) return flag;
  } else {
    report('flag', 'must be an object');
  }
  const more = count > problems.length ? `; and ${count - problems.length} more` : '';
  throw bulwarkError(
    'BWK_ERR_FLAG_INVALID',
    {
      key:
        typeof key !== 'string'
          ? '(without a key)'
          : FLAG_KEY_PATTERN.test(key)
            ? key
            : JSON.stringify(key.slice(0, 140)),
      detail: problems.map((p) => `${p.field} ${p.message}`).join('; ') + more,
    },
    { details: problems },
  );
}

/** Reports one problem with one field (a path like `rules[0].conditions[1].op`). */
type Report = (field: string, message: string) => void;

/** Checks every field, reporting each problem; returns the copy, or undefined if one was reported. */
function check(input: Plain, problem: Report): FlagDefinition | undefined {
  let failed = false;
  const report: Report = (field, message) => {
    failed = true;
    problem(field, message);
  };

  const key = input['key'];
  if (typeof key !== 'string' || !FLAG_KEY_PATTERN.test(key))
    report('key', `must match ${FLAG_KEY_PATTERN.source}`);

  const type = input['type'];
  const knownType = TYPES.includes(type as FlagType) ? (type as FlagType) : undefined;
  if (knownType === undefined) report('type', `must be one of ${TYPES.join(', ')}`);

  const description = input['description'];
  if (description !== undefined && typeof description !== 'string') report('description', 'must be a string');

  const enabled = input['enabled'];
  if (typeof enabled !== 'boolean') report('enabled', 'must be a boolean');

  const variants = checkVariants(input['variants'], knownType, report);
  // Variant references are only checked against a usable set of variants, to report the cause once.
  const names = variants === undefined ? undefined : new Set(Object.keys(variants));
  const variantRef = (value: unknown, field: string, required: boolean): string | undefined => {
    if (value === undefined && !required) return undefined;
    if (typeof value !== 'string') {
      report(field, 'must be a string naming a variant');
      return undefined;
    }
    if (names !== undefined && !names.has(value)) report(field, `${JSON.stringify(value)} is not a variant`);
    return value;
  };

  const defaultVariant = variantRef(input['defaultVariant'], 'defaultVariant', true);
  const offVariant = variantRef(input['offVariant'], 'offVariant', false);

  let rules: TargetingRule[] | undefined;
  const rawRules = input['rules'];
  if (rawRules !== undefined) {
    if (!Array.isArray(rawRules)) report('rules', 'must be an array');
    else rules = rawRules.map((rule, i) => checkRule(rule, `rules[${i}]`, variantRef, report));
  }

  const rollout =
    input['rollout'] === undefined
      ? undefined
      : checkRollout(input['rollout'], 'rollout', variantRef, report);

  if (failed) return undefined;
  const flag: FlagDefinition = {
    key: key as string,
    type: knownType!,
    variants: variants!,
    defaultVariant: defaultVariant!,
    enabled: enabled as boolean,
  };
  if (description !== undefined) flag.description = description as string;
  if (offVariant !== undefined) flag.offVariant = offVariant;
  if (rules !== undefined) flag.rules = rules;
  if (rollout !== undefined) flag.rollout = rollout;
  return flag;
}

function checkVariants(
  input: unknown,
  type: FlagType | undefined,
  report: Report,
): Record<string, FlagValue> | undefined {
  if (!isPlain(input) || Object.keys(input).length === 0) {
    report('variants', 'must be an object with at least one variant');
    return undefined;
  }
  const variants: Record<string, FlagValue> = {};
  let ok = true;
  for (const [name, value] of Object.entries(input)) {
    const field = `variants${member(name)}`;
    if (name === '') {
      report('variants', 'must not have an empty variant name');
      ok = false;
      continue;
    }
    if (type === undefined) continue;
    const copy = checkValue(value, type, field, report);
    if (copy === undefined) ok = false;
    else define(variants, name, copy);
  }
  return ok && type !== undefined ? variants : undefined;
}

/** A variant value of `type`, copied; undefined (and reported) if it is not one. */
function checkValue(value: unknown, type: FlagType, field: string, report: Report): FlagValue | undefined {
  switch (type) {
    case 'boolean':
      if (typeof value === 'boolean') return value;
      report(field, 'must be a boolean (type is boolean)');
      return undefined;
    case 'string':
      if (typeof value === 'string') return value;
      report(field, 'must be a string (type is string)');
      return undefined;
    case 'number':
      if (typeof value === 'number' && Number.isFinite(value)) return value;
      report(field, 'must be a finite number (type is number)');
      return undefined;
    case 'json':
      return copyJson(value, field, 0, report);
  }
}

/** A deep copy of a JSON value; undefined (and reported with the path inside it) if it is not one. */
function copyJson(value: unknown, field: string, depth: number, report: Report): FlagValue | undefined {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return value;
    report(field, 'must be a JSON value (a finite number)');
    return undefined;
  }
  if (depth >= MAX_JSON_DEPTH) {
    // Also where a cyclic value ends up.
    report(field, `must be a JSON value nested at most ${MAX_JSON_DEPTH} deep`);
    return undefined;
  }
  if (Array.isArray(value)) {
    const copy: FlagValue[] = [];
    for (let i = 0; i < value.length; i++) {
      const item = copyJson(value[i], `${field}[${i}]`, depth + 1, report);
      if (item === undefined) return undefined;
      copy.push(item);
    }
    return copy;
  }
  if (isPlain(value)) {
    const copy: Record<string, FlagValue> = {};
    for (const [name, item] of Object.entries(value)) {
      const itemCopy = copyJson(item, `${field}${member(name)}`, depth + 1, report);
      if (itemCopy === undefined) return undefined;
      define(copy, name, itemCopy);
    }
    return copy;
  }
  report(field, 'must be a JSON value (null, boolean, number, string, array or plain object)');
  return undefined;
}

type VariantRef = (value: unknown, field: string, required: boolean) => string | undefined;

function checkRule(input: unknown, field: string, variantRef: VariantRef, report: Report): TargetingRule {
  const rule: TargetingRule = { conditions: [] };
  if (!isPlain(input)) {
    report(field, 'must be an object');
    return rule;
  }
  const name = input['name'];
  if (name !== undefined) {
    if (typeof name !== 'string' || name === '') report(`${field}.name`, 'must be a non-empty string');
    else rule.name = name;
  }
  const conditions = input['conditions'];
  if (!Array.isArray(conditions)) report(`${field}.conditions`, 'must be an array (empty: always matches)');
  else rule.conditions = conditions.map((c, i) => checkCondition(c, `${field}.conditions[${i}]`, report));

  const hasVariant = input['variant'] !== undefined;
  const hasRollout = input['rollout'] !== undefined;
  if (hasVariant === hasRollout) {
    report(field, 'must have exactly one of variant and rollout');
  } else if (hasVariant) {
    const variant = variantRef(input['variant'], `${field}.variant`, true);
    if (variant !== undefined) rule.variant = variant;
  } else {
    const rollout = checkRollout(input['rollout'], `${field}.rollout`, variantRef, report);
    if (rollout !== undefined) rule.rollout = rollout;
  }
  return rule;
}

function checkCondition(input: unknown, field: string, report: Report): Condition {
  const condition: Condition = { attribute: '', op: 'exists' };
  if (!isPlain(input)) {
    report(field, 'must be an object');
    return condition;
  }
  const attribute = input['attribute'];
  if (typeof attribute !== 'string' || attribute === '')
    report(`${field}.attribute`, 'must be a non-empty string');
  else condition.attribute = attribute;

  const rawOp = input['op'];
  if (!RULE_OPERATORS.includes(rawOp as RuleOperator)) {
    report(`${field}.op`, `must be one of ${RULE_OPERATORS.join(', ')}`);
    return condition;
  }
  const op = rawOp as RuleOperator;
  condition.op = op;

  const values = input['values'];
  if (values === undefined && op === 'exists') return condition;
  if (!Array.isArray(values) || values.length === 0) {
    report(`${field}.values`, `must be a non-empty array of strings, numbers and booleans (op is ${op})`);
    return condition;
  }
  const copy: (string | number | boolean)[] = [];
  values.forEach((value: unknown, i) => {
    if (
      typeof value === 'string' ||
      typeof value === 'boolean' ||
      (typeof value === 'number' && Number.isFinite(value))
    ) {
      copy.push(value);
    } else {
      report(`${field}.values[${i}]`, 'must be a string, a finite number or a boolean');
    }
  });
  const first: unknown = values[0];
  if (STRING_OPERATORS.has(op) && typeof first !== 'string') {
    report(`${field}.values[0]`, `must be a string (op is ${op})`);
  }
  if (ORDER_OPERATORS.has(op) && typeof first === 'boolean') {
    report(`${field}.values[0]`, `must be a number or a string (op is ${op})`);
  }
  condition.values = copy;
  return condition;
}

function checkRollout(
  input: unknown,
  field: string,
  variantRef: VariantRef,
  report: Report,
): Rollout | undefined {
  if (!isPlain(input)) {
    report(field, 'must be an object with variant, otherwise and percentage');
    return undefined;
  }
  const variant = variantRef(input['variant'], `${field}.variant`, true);
  const otherwise = variantRef(input['otherwise'], `${field}.otherwise`, true);
  const percentage = input['percentage'];
  const validPercentage =
    typeof percentage === 'number' && Number.isFinite(percentage) && percentage >= 0 && percentage <= 100;
  if (!validPercentage) report(`${field}.percentage`, 'must be between 0 and 100');
  if (variant === undefined || otherwise === undefined || !validPercentage) return undefined;
  return { variant, otherwise, percentage };
}

/** A non-null, non-array object whose prototype is Object's or null (what JSON.parse produces). */
function isPlain(value: unknown): value is Plain {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** `.name` or `["a b"]`, as the path to a property would be written. */
function member(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`;
}

/** Sets an own property even for `__proto__`, which JSON.parse creates as an ordinary key. */
function define(target: Record<string, unknown>, name: string, value: unknown): void {
  Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
}

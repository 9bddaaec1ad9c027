import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isBulwarkError, type BulwarkError } from '../src/errors/index.js';
import { BUCKETS, bucketOf, inRollout } from '../src/flags/bucket.js';
import { evaluate } from '../src/flags/evaluate.js';
import type {
  Condition,
  EvaluationContext,
  FlagDefinition,
  FlagType,
  FlagValue,
  Rollout,
  RuleOperator,
  TargetingRule,
} from '../src/flags/types.js';
import { RULE_OPERATORS, validateFlag } from '../src/flags/validate.js';
import { checkoutFlag, staffRule } from './helpers/flags.js';

/** 32-bit FNV-1a over bytes, written the obvious way. */
function fnv1a(bytes: Uint8Array, seed = 0x811c9dc5): number {
  let h = seed;
  for (const byte of bytes) h = Math.imul(h ^ byte, 0x01000193);
  return h >>> 0;
}

/** The documented bucket function, with TextEncoder doing the UTF-8. */
function referenceBucket(flagKey: string, targetingKey: string): number {
  let h = fnv1a(new TextEncoder().encode(`${flagKey}\u0000${targetingKey}`));
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % BUCKETS;
}

/** Strings of any UTF-16 code units, lone surrogates included. */
const codeUnits = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) });
const anyString = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), codeUnits);
const percentage = fc.double({ min: 0, max: 100, noNaN: true });
const userKeys = (n: number): string[] => Array.from({ length: n }, (_, i) => `user-${i}`);

describe('bucketOf', () => {
  it('the reference FNV-1a matches the published test vectors', () => {
    const utf8 = (s: string) => new TextEncoder().encode(s);
    expect(fnv1a(utf8(''))).toBe(0x811c9dc5);
    expect(fnv1a(utf8('a'))).toBe(0xe40c292c);
    expect(fnv1a(utf8('foobar'))).toBe(0xbf9cf968);
  });

  it('golden values: changing the hash would reshuffle every running rollout', () => {
    expect(bucketOf('new-checkout', 'user-1')).toBe(641196);
    expect(bucketOf('new-checkout', 'user-2')).toBe(758522);
    expect(bucketOf('dark-mode', 'user-1')).toBe(432053);
    expect(bucketOf('', '')).toBe(794203);
    expect(bucketOf('search.v2', 'ada@acme.test')).toBe(895971);
    expect(bucketOf('i18n', 'zoë-😀')).toBe(470854);
    expect(bucketOf('a', '\ud800')).toBe(2415);
  });

  it('is FNV-1a + fmix32 of the UTF-8 of flagKey NUL targetingKey (lone surrogates as U+FFFD)', () => {
    fc.assert(
      fc.property(anyString, anyString, (flagKey, targetingKey) => {
        expect(bucketOf(flagKey, targetingKey)).toBe(referenceBucket(flagKey, targetingKey));
      }),
      { numRuns: 2000 },
    );
    expect(bucketOf('a', '\ud800')).toBe(bucketOf('a', '\ufffd'));
  });

  it('(c) is deterministic and an integer in [0, 10⁶)', () => {
    fc.assert(
      fc.property(anyString, anyString, (flagKey, targetingKey) => {
        const bucket = bucketOf(flagKey, targetingKey);
        expect(Number.isInteger(bucket)).toBe(true);
        expect(bucket).toBeGreaterThanOrEqual(0);
        expect(bucket).toBeLessThan(BUCKETS);
        expect(bucketOf(flagKey, targetingKey)).toBe(bucket);
        expect(bucketOf(`${flagKey}`, `${targetingKey}`)).toBe(bucket);
      }),
    );
  });

  it('keeps flag key and targeting key apart', () => {
    expect(bucketOf('ab', 'c')).not.toBe(bucketOf('a', 'bc'));
    expect(bucketOf('flag', 'user')).not.toBe(bucketOf('user', 'flag'));
  });

  it('(d) spreads 100 000 targeting keys evenly: 25% ± 0.5 in a 25% rollout, 10% ± 0.5 per tenth', () => {
    const keys = userKeys(100_000);
    for (const flagKey of ['new-checkout', 'dark-mode', 'x']) {
      const share = keys.filter((key) => inRollout(flagKey, key, 25)).length / keys.length;
      expect(Math.abs(share - 0.25)).toBeLessThan(0.005);

      const tenths = new Array<number>(10).fill(0);
      for (const key of keys) tenths[Math.floor(bucketOf(flagKey, key) / (BUCKETS / 10))]! += 1;
      const expected = keys.length / 10;
      for (const count of tenths) expect(Math.abs(count / keys.length - 0.1)).toBeLessThan(0.005);
      // χ² with 9 degrees of freedom: 27.88 is the 0.1% critical value.
      const chiSquare = tenths.reduce((sum, count) => sum + (count - expected) ** 2 / expected, 0);
      expect(chiSquare).toBeLessThan(27.88);
    }
  });

  it('splits independently per flag: two 50% rollouts overlap on about 25%', () => {
    const keys = userKeys(100_000);
    const both = keys.filter((key) => inRollout('flag-a', key, 50) && inRollout('flag-b', key, 50)).length;
    expect(Math.abs(both / keys.length - 0.25)).toBeLessThan(0.005);
  });
});

describe('inRollout', () => {
  it('(a) is monotonic: in at p1 ≤ p2 means in at p2', () => {
    fc.assert(
      fc.property(anyString, anyString, percentage, percentage, (flagKey, targetingKey, a, b) => {
        const [p1, p2] = a <= b ? [a, b] : [b, a];
        if (inRollout(flagKey, targetingKey, p1)) expect(inRollout(flagKey, targetingKey, p2)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('(b) lowering p2 to p1 removes exactly the keys with bucket in [p1·10⁴, p2·10⁴)', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.uniqueArray(anyString, { maxLength: 200 }),
        percentage,
        percentage,
        (flagKey, keys, a, b) => {
          fc.pre(a !== b);
          const [p1, p2] = a < b ? [a, b] : [b, a];
          const removed = keys.filter((k) => inRollout(flagKey, k, p2) && !inRollout(flagKey, k, p1));
          const inRange = keys.filter((k) => {
            const bucket = bucketOf(flagKey, k);
            return bucket >= Math.round(p1 * 10_000) && bucket < Math.round(p2 * 10_000);
          });
          expect(removed).toEqual(inRange);
        },
      ),
    );
  });

  it('0 includes nobody, 100 everybody; out-of-range percentages clamp, NaN is nobody', () => {
    fc.assert(
      fc.property(anyString, anyString, (flagKey, targetingKey) => {
        expect(inRollout(flagKey, targetingKey, 0)).toBe(false);
        expect(inRollout(flagKey, targetingKey, 100)).toBe(true);
        expect(inRollout(flagKey, targetingKey, -5)).toBe(false);
        expect(inRollout(flagKey, targetingKey, Number.NaN)).toBe(false);
        expect(inRollout(flagKey, targetingKey, 250)).toBe(true);
      }),
    );
  });

  it('resolves to one bucket in 10⁶: 0.0001% is bucket 0 only', () => {
    let zero: string | undefined;
    for (let i = 0; zero === undefined && i < 20_000_000; i++)
      if (bucketOf('fine', `user-${i}`) === 0) zero = `user-${i}`;
    expect(zero).toBeDefined();
    expect(inRollout('fine', zero!, 0.0001)).toBe(true);
    expect(inRollout('fine', zero!, 0.00004)).toBe(false);
    expect(inRollout('fine', 'user-1', 0.0001)).toBe(bucketOf('fine', 'user-1') === 0);
  });
});

/** A boolean flag with two rules and a rollout, as a service would hold it. */
const checkout: FlagDefinition = {
  ...checkoutFlag,
  description: 'The new checkout flow',
  rules: [
    staffRule,
    {
      conditions: [
        { attribute: 'country', op: 'in', values: ['NL', 'BE'] },
        { attribute: 'plan', op: 'neq', values: ['free'] },
      ],
      rollout: { variant: 'on', otherwise: 'off', percentage: 50 },
    },
  ],
  rollout: { variant: 'on', otherwise: 'off', percentage: 10 },
};

function flagWith(overrides: Partial<FlagDefinition>): FlagDefinition {
  return { ...checkout, ...overrides };
}

/** A targeting key inside (or outside) a rollout of `flagKey` at `percentage`. */
function keyFor(flagKey: string, percentage: number, inside: boolean): string {
  const key = userKeys(10_000).find((k) => inRollout(flagKey, k, percentage) === inside);
  if (key === undefined) throw new Error('no such key');
  return key;
}

describe('evaluate: reasons and error codes', () => {
  it('FLAG_NOT_FOUND: the caller default', () => {
    expect(evaluate(undefined, 'nope', {}, 'fallback')).toEqual({
      key: 'nope',
      value: 'fallback',
      reason: 'ERROR',
      errorCode: 'FLAG_NOT_FOUND',
      errorMessage: 'Flag nope does not exist',
    });
  });

  it('TYPE_MISMATCH: expected type differs from the flag type; a matching one evaluates', () => {
    expect(evaluate(checkout, 'new-checkout', {}, 'x', 'string')).toMatchObject({
      value: 'x',
      reason: 'ERROR',
      errorCode: 'TYPE_MISMATCH',
      errorMessage: 'Flag new-checkout is of type boolean, not string',
    });
    expect(
      evaluate(checkout, 'new-checkout', { targetingKey: 'u' }, true, 'boolean').errorCode,
    ).toBeUndefined();
  });

  it('DISABLED: offVariant, else defaultVariant; the kill switch beats rules and rollouts', () => {
    const staff = { email: 'ada@acme.test', targetingKey: keyFor('new-checkout', 10, true) };
    expect(evaluate(checkout, 'new-checkout', staff, false)).toMatchObject({
      value: true,
      reason: 'TARGETING_MATCH',
    });

    const killed = flagWith({ enabled: false });
    expect(evaluate(killed, 'new-checkout', staff, true)).toEqual({
      key: 'new-checkout',
      value: false,
      variant: 'off',
      reason: 'DISABLED',
    });
    const killedWithOff = flagWith({ enabled: false, defaultVariant: 'on', offVariant: 'off' });
    expect(evaluate(killedWithOff, 'new-checkout', staff, true)).toEqual({
      key: 'new-checkout',
      value: false,
      variant: 'off',
      reason: 'DISABLED',
    });
  });

  it('TARGETING_MATCH: named rule, or "rule <index>" (0-based)', () => {
    expect(evaluate(checkout, 'new-checkout', { email: 'ada@acme.test' }, false)).toEqual({
      key: 'new-checkout',
      value: true,
      variant: 'on',
      reason: 'TARGETING_MATCH',
      rule: 'staff',
    });
    const unnamed = flagWith({
      rules: [
        { conditions: [{ attribute: 'plan', op: 'eq', values: ['gold'] }], variant: 'off' },
        { conditions: [{ attribute: 'plan', op: 'eq', values: ['pro'] }], variant: 'on' },
      ],
    });
    expect(evaluate(unnamed, 'new-checkout', { plan: 'pro' }, false)).toMatchObject({
      value: true,
      reason: 'TARGETING_MATCH',
      rule: 'rule 1',
    });
  });

  it('rule order: the first matching rule decides, even when a later one matches too', () => {
    const ordered = flagWith({
      rules: [
        { name: 'beta', conditions: [{ attribute: 'beta', op: 'eq', values: [true] }], variant: 'off' },
        { name: 'everyone', conditions: [], variant: 'on' },
      ],
      rollout: undefined,
    });
    expect(evaluate(ordered, 'k', { beta: true }, true)).toMatchObject({ value: false, rule: 'beta' });
    expect(evaluate(ordered, 'k', { beta: false }, false)).toMatchObject({ value: true, rule: 'everyone' });
    expect(evaluate(ordered, 'k', {}, false)).toMatchObject({ value: true, rule: 'everyone' });
  });

  it('SPLIT from a rule (rule named) and from the top-level rollout (no rule)', () => {
    const inside = keyFor('new-checkout', 50, true);
    const outside = keyFor('new-checkout', 50, false);
    const dutch = { country: 'NL', plan: 'pro' };
    expect(evaluate(checkout, 'new-checkout', { ...dutch, targetingKey: inside }, false)).toEqual({
      key: 'new-checkout',
      value: true,
      variant: 'on',
      reason: 'SPLIT',
      rule: 'rule 1',
    });
    expect(evaluate(checkout, 'new-checkout', { ...dutch, targetingKey: outside }, true)).toMatchObject({
      value: false,
      variant: 'off',
      reason: 'SPLIT',
      rule: 'rule 1',
    });

    const top = keyFor('new-checkout', 10, true);
    expect(evaluate(checkout, 'new-checkout', { targetingKey: top }, false)).toEqual({
      key: 'new-checkout',
      value: true,
      variant: 'on',
      reason: 'SPLIT',
    });
    expect(
      evaluate(checkout, 'new-checkout', { targetingKey: keyFor('new-checkout', 10, false) }, true),
    ).toEqual({
      key: 'new-checkout',
      value: false,
      variant: 'off',
      reason: 'SPLIT',
    });
  });

  it('TARGETING_KEY_MISSING: a rollout without a non-empty string targetingKey', () => {
    for (const context of [{}, { targetingKey: '' }, { targetingKey: 42 }, { targetingKey: null }]) {
      expect(evaluate(checkout, 'new-checkout', context as EvaluationContext, true)).toMatchObject({
        value: true,
        reason: 'ERROR',
        errorCode: 'TARGETING_KEY_MISSING',
      });
    }
    // From a matching rule's rollout too; a matching plain-variant rule needs no key.
    expect(evaluate(checkout, 'new-checkout', { country: 'BE', plan: 'pro' }, true).errorCode).toBe(
      'TARGETING_KEY_MISSING',
    );
    expect(evaluate(checkout, 'new-checkout', { email: 'ada@acme.test' }, false).reason).toBe(
      'TARGETING_MATCH',
    );
  });

  it('STATIC without rules or rollout (empty rules count as none); DEFAULT when rules did not match', () => {
    const plain = flagWith({ rules: undefined, rollout: undefined });
    expect(evaluate(plain, 'new-checkout', {}, true)).toEqual({
      key: 'new-checkout',
      value: false,
      variant: 'off',
      reason: 'STATIC',
    });
    expect(evaluate(flagWith({ rules: [], rollout: undefined }), 'k', {}, true).reason).toBe('STATIC');
    expect(
      evaluate(flagWith({ rollout: undefined }), 'k', { email: 'x@elsewhere.test' }, true),
    ).toMatchObject({
      value: false,
      variant: 'off',
      reason: 'DEFAULT',
    });
  });

  it('PARSE_ERROR: a served variant the flag does not define, or of the wrong type, an unknown operator', () => {
    const cases: FlagDefinition[] = [
      flagWith({ rules: [{ conditions: [], variant: 'missing' }] }),
      flagWith({ rules: [{ conditions: [] }] }),
      flagWith({ enabled: false, offVariant: 'missing' }),
      flagWith({ rules: undefined, rollout: undefined, defaultVariant: 'toString' }),
      flagWith({ rules: undefined, rollout: { variant: 'on', otherwise: 'gone', percentage: 0 } }),
      flagWith({ rules: undefined, rollout: undefined, variants: { on: true, off: 'no' } }),
      flagWith({ rules: [{ conditions: [{ attribute: 'a', op: 'like' as RuleOperator, values: ['x'] }] }] }),
      flagWith({ rules: [{ conditions: [{ attribute: 'a', op: 'eq' }], variant: 'on' }] }),
      flagWith({ rollout: { variant: 'on', otherwise: 'off', percentage: '5' as unknown as number } }),
    ];
    for (const flag of cases) {
      const details = evaluate(flag, 'new-checkout', { a: 'x', targetingKey: 'u' }, null);
      expect(details).toMatchObject({ value: null, reason: 'ERROR', errorCode: 'PARSE_ERROR' });
      expect(details.errorMessage).toMatch(/^Flag new-checkout is malformed: /);
      expect(details.variant).toBeUndefined();
    }
  });

  it('GENERAL: anything unexpected is caught, never thrown', () => {
    const throwing = {
      get email(): string {
        throw new Error('getter exploded');
      },
    };
    expect(evaluate(checkout, 'new-checkout', throwing, false)).toMatchObject({
      value: false,
      reason: 'ERROR',
      errorCode: 'GENERAL',
      errorMessage: 'Flag new-checkout could not be evaluated: getter exploded',
    });
    const noConditions = flagWith({ rules: [{ variant: 'on' } as TargetingRule] });
    expect(evaluate(noConditions, 'k', {}, false)).toMatchObject({ reason: 'ERROR', errorCode: 'GENERAL' });
    const noVariants = { ...checkout, variants: undefined } as unknown as FlagDefinition;
    expect(evaluate(noVariants, 'k', { email: 'a@acme.test' }, 7)).toMatchObject({
      value: 7,
      errorCode: 'GENERAL',
    });
  });

  it('treats a missing context as empty and ignores inherited properties', () => {
    const missing = undefined as unknown as EvaluationContext;
    expect(evaluate(flagWith({ rollout: undefined }), 'k', missing, true)).toMatchObject({
      reason: 'DEFAULT',
    });
    const exists = (attribute: string): FlagDefinition =>
      flagWith({ rules: [{ conditions: [{ attribute, op: 'exists' }], variant: 'on' }], rollout: undefined });
    expect(evaluate(exists('constructor'), 'k', {}, true).reason).toBe('DEFAULT');
    expect(evaluate(exists('toString'), 'k', {}, true).reason).toBe('DEFAULT');
    expect(evaluate(exists('__proto__'), 'k', {}, true).reason).toBe('DEFAULT');
    expect(
      evaluate(exists('__proto__'), 'k', JSON.parse('{"__proto__": 1}') as EvaluationContext, false).reason,
    ).toBe('TARGETING_MATCH');
  });
});

describe('evaluate: operators', () => {
  const matches = (condition: Condition, context: EvaluationContext): boolean =>
    evaluate(
      {
        key: 'op',
        type: 'boolean',
        variants: { yes: true, no: false },
        defaultVariant: 'no',
        enabled: true,
        rules: [{ conditions: [condition], variant: 'yes' }],
      },
      'op',
      context,
      false,
    ).value === true;

  const table: [RuleOperator, Condition['values'], unknown, boolean][] = [
    ['eq', ['pro'], 'pro', true],
    ['eq', ['pro'], 'free', false],
    ['eq', [5], 5, true],
    ['eq', [5], '5', false],
    ['eq', ['5'], 5, false],
    ['eq', [true], true, true],
    ['eq', [true], 'true', false],
    ['eq', ['a', 'b'], 'b', false],
    ['neq', ['free'], 'pro', true],
    ['neq', ['free'], 'free', false],
    ['neq', [1], '1', true],
    ['in', ['NL', 'BE'], 'BE', true],
    ['in', ['NL', 'BE'], 'DE', false],
    ['in', [1, 2], 2, true],
    ['in', [1, 2], '2', false],
    ['notIn', ['NL', 'BE'], 'DE', true],
    ['notIn', ['NL', 'BE'], 'NL', false],
    ['contains', ['acme'], 'ada@acme.test', true],
    ['contains', ['acme'], 'ada@example.test', false],
    ['contains', ['1'], 123, false],
    ['contains', ['a'], ['a'], false],
    ['startsWith', ['ada'], 'ada@acme.test', true],
    ['startsWith', ['acme'], 'ada@acme.test', false],
    ['endsWith', ['.test'], 'ada@acme.test', true],
    ['endsWith', ['.com'], 'ada@acme.test', false],
    ['gt', [18], 21, true],
    ['gt', [18], 18, false],
    ['gte', [18], 18, true],
    ['gte', [18], 17, false],
    ['lt', [18], 17, true],
    ['lt', [18], 18, false],
    ['lte', [18], 18, true],
    ['lte', [18], 19, false],
    ['gt', ['2.0.0'], '10.0.0', false], // code-unit order, not semver
    ['gt', ['b'], 'c', true],
    ['lt', ['b'], 'B', true],
    ['gte', [18], '21', false], // mixed types never compare
    ['lte', ['21'], 18, false],
    ['gt', [0], true, false],
    ['gt', [0], Number.NaN, false],
    ['exists', undefined, 'x', true],
    ['exists', undefined, 0, true],
    ['exists', undefined, false, true],
    ['exists', undefined, '', true],
  ];

  it.each(table)('%s %j against %j → %s', (op, values, actual, expected) => {
    const condition: Condition =
      values === undefined ? { attribute: 'a', op } : { attribute: 'a', op, values };
    expect(matches(condition, { a: actual })).toBe(expected);
  });

  const operators = RULE_OPERATORS;
  it.each(operators)('%s: a missing or null attribute matches nothing', (op) => {
    const condition: Condition = { attribute: 'a', op, values: ['x'] };
    expect(matches(condition, {})).toBe(false);
    expect(matches(condition, { a: undefined })).toBe(false);
    expect(matches(condition, { a: null })).toBe(false);
    expect(matches(condition, { b: 'x' })).toBe(false);
  });

  it('all conditions of a rule must hold; no conditions always holds', () => {
    const both: Condition[] = [
      { attribute: 'country', op: 'eq', values: ['NL'] },
      { attribute: 'age', op: 'gte', values: [18] },
    ];
    const flag: FlagDefinition = {
      key: 'all',
      type: 'string',
      variants: { adult: 'adult', other: 'other' },
      defaultVariant: 'other',
      enabled: true,
      rules: [{ conditions: both, variant: 'adult' }],
    };
    expect(evaluate(flag, 'all', { country: 'NL', age: 30 }, '').value).toBe('adult');
    expect(evaluate(flag, 'all', { country: 'NL', age: 3 }, '').value).toBe('other');
    expect(evaluate(flag, 'all', { country: 'BE', age: 30 }, '').value).toBe('other');
    expect(evaluate({ ...flag, rules: [{ conditions: [], variant: 'adult' }] }, 'all', {}, '').value).toBe(
      'adult',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Generated flags and contexts.

const ATTRIBUTES = ['country', 'plan', 'age', 'email', 'beta', 'targetingKey'];
const finite = fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 });
const small = fc.oneof(
  fc.constantFrom('NL', 'BE', 'pro', 'free', 'ada@acme.test', '', 'a'),
  fc.integer({ min: -3, max: 30 }),
);
const primitive = fc.oneof(small, fc.string(), finite, fc.boolean());

const condition: fc.Arbitrary<Condition> = fc
  .record({
    attribute: fc.oneof(fc.constantFrom(...ATTRIBUTES), fc.string({ minLength: 1 })),
    op: fc.constantFrom(...RULE_OPERATORS),
  })
  .chain(({ attribute, op }): fc.Arbitrary<Condition> => {
    switch (op) {
      case 'exists':
        return fc.constant({ attribute, op });
      case 'contains':
      case 'startsWith':
      case 'endsWith':
        return fc
          .array(fc.string(), { minLength: 1, maxLength: 3 })
          .map((values) => ({ attribute, op, values }));
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte':
        return fc
          .array(fc.oneof(fc.string(), finite), { minLength: 1, maxLength: 2 })
          .map((values) => ({ attribute, op, values }));
      case 'eq':
      case 'neq':
      case 'in':
      case 'notIn':
        return fc
          .array(primitive, { minLength: 1, maxLength: 3 })
          .map((values) => ({ attribute, op, values }));
    }
  });

function valueOf(type: FlagType): fc.Arbitrary<FlagValue> {
  switch (type) {
    case 'boolean':
      return fc.boolean();
    case 'string':
      return fc.string();
    case 'number':
      return finite;
    case 'json':
      return fc.jsonValue() as fc.Arbitrary<FlagValue>;
  }
}

// Built once: fc.stringMatching compiles its pattern on every call.
const flagKey = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}$/);

/** Valid flag definitions of every type, with rules, rollouts, kill switches. */
const validFlag: fc.Arbitrary<FlagDefinition> = fc
  .tuple(
    fc.constantFrom<FlagType>('boolean', 'string', 'number', 'json'),
    fc.uniqueArray(fc.string({ minLength: 1, maxLength: 10 }), { minLength: 1, maxLength: 4 }),
  )
  .chain(([type, names]) => {
    const name = fc.constantFrom(...names);
    const rollout: fc.Arbitrary<Rollout> = fc.record({ variant: name, otherwise: name, percentage });
    const rule: fc.Arbitrary<TargetingRule> = fc.oneof(
      fc.record(
        {
          name: fc.string({ minLength: 1 }),
          conditions: fc.array(condition, { maxLength: 3 }),
          variant: name,
        },
        { requiredKeys: ['conditions', 'variant'] },
      ),
      fc.record(
        { name: fc.string({ minLength: 1 }), conditions: fc.array(condition, { maxLength: 3 }), rollout },
        { requiredKeys: ['conditions', 'rollout'] },
      ),
    );
    return fc.record(
      {
        key: flagKey,
        type: fc.constant(type),
        description: fc.string(),
        variants: fc
          .tuple(...names.map(() => valueOf(type)))
          .map((values) => Object.fromEntries(names.map((n, i) => [n, values[i]!]))),
        defaultVariant: name,
        enabled: fc.boolean(),
        offVariant: name,
        rules: fc.array(rule, { maxLength: 4 }),
        rollout,
      },
      { requiredKeys: ['key', 'type', 'variants', 'defaultVariant', 'enabled'] },
    );
  });

const context: fc.Arbitrary<EvaluationContext> = fc.oneof(
  fc.dictionary(fc.string(), fc.jsonValue()),
  fc.dictionary(
    fc.constantFrom(...ATTRIBUTES),
    fc.oneof(small, fc.jsonValue(), fc.constantFrom(null, undefined)),
  ),
  fc.dictionary(fc.string(), fc.anything()),
);

function isOfType(value: unknown, type: FlagType): boolean {
  return type === 'json' ? value !== undefined : typeof value === type;
}

describe('evaluate: properties', () => {
  it('(e) never throws for arbitrary contexts, and serves a value of the flag type or the default', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(checkout, flagWith({ enabled: false })),
        context,
        fc.option(fc.string()),
        (flag, ctx, targetingKey) => {
          const withKey = targetingKey === null ? ctx : { ...ctx, targetingKey };
          const details = evaluate(flag, flag.key, withKey, 'default');
          if (details.reason === 'ERROR') expect(details.value).toBe('default');
          else expect(typeof details.value).toBe('boolean');
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('(e) over generated valid flags: validateFlag returns an equal copy; evaluate serves a defined variant', () => {
    const defaultValue = Symbol.for('default') as unknown as FlagValue;
    fc.assert(
      fc.property(validFlag, context, fc.option(fc.string()), (input, ctx, targetingKey) => {
        const flag = validateFlag(input);
        expect(flag).toEqual(input);
        expect(flag).not.toBe(input);
        const withKey = targetingKey === null ? ctx : { ...ctx, targetingKey };
        const details = evaluate(flag, flag.key, withKey, defaultValue);
        if (details.reason === 'ERROR') {
          expect(details.value).toBe(defaultValue);
          expect(details.errorCode).toBe('TARGETING_KEY_MISSING');
        } else {
          expect(Object.hasOwn(flag.variants, details.variant!)).toBe(true);
          expect(details.value).toBe(flag.variants[details.variant!]);
          expect(isOfType(details.value, flag.type)).toBe(true);
          if (!flag.enabled) expect(details.reason).toBe('DISABLED');
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('validateFlag returns a flag or throws BWK_ERR_FLAG_INVALID for anything at all', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          validFlag.map((f) => ({ ...f, rules: [{ conditions: 'x' }] })),
        ),
        (input) => {
          try {
            validateFlag(input);
          } catch (error) {
            expect(isBulwarkError(error, 'BWK_ERR_FLAG_INVALID')).toBe(true);
          }
        },
      ),
    );
  });
});

// ---------------------------------------------------------------------------------------------

function invalid(input: unknown): BulwarkError {
  try {
    validateFlag(input);
  } catch (error) {
    if (isBulwarkError(error, 'BWK_ERR_FLAG_INVALID')) return error;
    throw error;
  }
  throw new Error('validateFlag accepted it');
}

function detailOf(input: unknown): string {
  return String(invalid(input).params['detail']);
}

describe('validateFlag', () => {
  it('returns a clean copy: unknown properties dropped at every level, json values deep-copied', () => {
    const json = { theme: { colours: ['red'] } };
    const input = {
      ...checkout,
      type: 'json',
      variants: { on: json, off: null },
      extra: 1,
      rules: [
        {
          ...checkout.rules![0]!,
          note: 'x',
          conditions: [{ attribute: 'email', op: 'endsWith', values: ['@acme.test'], why: 1 }],
        },
      ],
      rollout: { ...checkout.rollout!, seed: 3 },
    };
    const flag = validateFlag(input);
    expect(flag).toEqual({
      key: 'new-checkout',
      type: 'json',
      description: 'The new checkout flow',
      variants: { on: { theme: { colours: ['red'] } }, off: null },
      defaultVariant: 'off',
      enabled: true,
      rules: [staffRule],
      rollout: { variant: 'on', otherwise: 'off', percentage: 10 },
    });
    json.theme.colours.push('blue');
    expect(flag.variants['on']).toEqual({ theme: { colours: ['red'] } });
  });

  it('accepts the example flag unchanged, and optional properties left out', () => {
    expect(validateFlag(checkout)).toEqual(checkout);
    const minimal = { key: 'a', type: 'number', variants: { one: 1 }, defaultVariant: 'one', enabled: false };
    expect(validateFlag(minimal)).toEqual(minimal);
    expect(Object.keys(validateFlag(minimal))).toEqual(Object.keys(minimal));
  });

  it('error: code, 400, message naming the flag, details as { field, message }', () => {
    const error = invalid({ ...checkout, defaultVariant: 'x' });
    expect(error.statusCode).toBe(400);
    expect(error.message).toBe('Invalid flag new-checkout: defaultVariant "x" is not a variant');
    expect(error.details).toEqual([{ field: 'defaultVariant', message: '"x" is not a variant' }]);
  });

  it('names the key', () => {
    for (const key of ['', 'Upper', '-dash', 'a b', 'x'.repeat(129), 42, undefined]) {
      expect(detailOf({ ...checkout, key })).toBe('key must match ^[a-z0-9][a-z0-9._-]{0,127}$');
    }
    expect(validateFlag({ ...checkout, key: 'a'.repeat(128) }).key).toHaveLength(128);
    expect(invalid({ ...checkout, key: 'Bad Key' }).message).toMatch(
      /^Invalid flag "Bad Key": key must match/,
    );
    expect(invalid({ ...checkout, key: 3 }).message).toMatch(/^Invalid flag \(without a key\): /);
  });

  it('names type, enabled, description and the flag itself', () => {
    expect(detailOf({ ...checkout, type: 'bool' })).toBe('type must be one of boolean, string, number, json');
    expect(detailOf({ ...checkout, enabled: 'yes' })).toBe('enabled must be a boolean');
    expect(detailOf({ ...checkout, enabled: undefined })).toBe('enabled must be a boolean');
    expect(detailOf({ ...checkout, description: 3 })).toBe('description must be a string');
    expect(detailOf({ ...checkout, description: null })).toBe('description must be a string');
    for (const input of [null, [], 'flag', 3, new Date()])
      expect(detailOf(input)).toBe('flag must be an object');
  });

  it('names variants and their values against the type', () => {
    expect(detailOf({ ...checkout, variants: {} })).toBe(
      'variants must be an object with at least one variant',
    );
    expect(detailOf({ ...checkout, variants: [true] })).toBe(
      'variants must be an object with at least one variant',
    );
    expect(detailOf({ ...checkout, variants: { on: 'true', off: false } })).toBe(
      'variants.on must be a boolean (type is boolean)',
    );
    expect(detailOf({ ...checkout, type: 'string', variants: { on: 1, off: 'b' } })).toBe(
      'variants.on must be a string (type is string)',
    );
    expect(detailOf({ ...checkout, type: 'number', variants: { on: Number.NaN, 'off x': 1 } })).toBe(
      'variants.on must be a finite number (type is number)',
    );
    expect(detailOf({ ...checkout, type: 'number', variants: { on: 1, 'off x': Infinity } })).toContain(
      'variants["off x"] must be a finite number',
    );
    expect(detailOf({ ...checkout, variants: { on: true, off: false, '': true } })).toContain(
      'variants must not have an empty variant name',
    );
  });

  it('json variants: any JSON value, naming the path inside a bad one', () => {
    const json = (on: unknown) => ({ ...checkout, type: 'json', variants: { on, off: null } });
    for (const good of [null, 1, 'x', true, [], {}, [1, { a: [null] }]])
      expect(validateFlag(json(good)).variants['on']).toEqual(good);
    expect(detailOf(json({ a: [1, undefined] }))).toBe(
      'variants.on.a[1] must be a JSON value (null, boolean, number, string, array or plain object)',
    );
    expect(detailOf(json({ when: new Date(0) }))).toContain('variants.on.when must be a JSON value');
    expect(detailOf(json({ f: () => 1 }))).toContain('variants.on.f must be a JSON value');
    expect(detailOf(json({ n: 10n }))).toContain('variants.on.n must be a JSON value');
    expect(detailOf(json([Number.POSITIVE_INFINITY]))).toBe(
      'variants.on[0] must be a JSON value (a finite number)',
    );
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(detailOf(json(cyclic))).toContain('must be a JSON value nested at most 64 deep');
  });

  it('keeps a __proto__ key from JSON as an ordinary variant, without touching prototypes', () => {
    const input: unknown = JSON.parse(
      '{"key":"p","type":"json","variants":{"__proto__":{"__proto__":{"polluted":1}},"b":2},"defaultVariant":"__proto__","enabled":true}',
    );
    const flag = validateFlag(input);
    expect(Object.keys(flag.variants)).toEqual(['__proto__', 'b']);
    expect(Object.getPrototypeOf(flag.variants)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(evaluate(flag, 'p', {}, 0)).toMatchObject({ variant: '__proto__', reason: 'STATIC' });
    expect(evaluate(flag, 'p', {}, 0).value).toEqual(JSON.parse('{"__proto__":{"polluted":1}}'));
  });

  it('names defaultVariant, offVariant, rule and rollout variants the flag does not define', () => {
    expect(detailOf({ ...checkout, defaultVariant: 'x' })).toBe('defaultVariant "x" is not a variant');
    expect(detailOf({ ...checkout, defaultVariant: undefined })).toBe(
      'defaultVariant must be a string naming a variant',
    );
    expect(detailOf({ ...checkout, offVariant: 'x' })).toBe('offVariant "x" is not a variant');
    expect(detailOf({ ...checkout, offVariant: null })).toBe('offVariant must be a string naming a variant');
    expect(detailOf({ ...checkout, rules: [{ conditions: [], variant: 'x' }] })).toBe(
      'rules[0].variant "x" is not a variant',
    );
    expect(detailOf({ ...checkout, rollout: { variant: 'on', otherwise: 'x', percentage: 1 } })).toBe(
      'rollout.otherwise "x" is not a variant',
    );
    expect(
      detailOf({
        ...checkout,
        rules: [
          checkout.rules![0],
          { conditions: [], rollout: { variant: 'y', otherwise: 'off', percentage: 1 } },
        ],
      }),
    ).toBe('rules[1].rollout.variant "y" is not a variant');
  });

  it('names rule shapes', () => {
    expect(detailOf({ ...checkout, rules: {} })).toBe('rules must be an array');
    expect(detailOf({ ...checkout, rules: [null] })).toBe('rules[0] must be an object');
    expect(detailOf({ ...checkout, rules: [{ conditions: [] }] })).toBe(
      'rules[0] must have exactly one of variant and rollout',
    );
    expect(
      detailOf({ ...checkout, rules: [{ conditions: [], variant: 'on', rollout: checkout.rollout }] }),
    ).toBe('rules[0] must have exactly one of variant and rollout');
    expect(detailOf({ ...checkout, rules: [{ variant: 'on' }] })).toBe(
      'rules[0].conditions must be an array (empty: always matches)',
    );
    expect(detailOf({ ...checkout, rules: [{ name: '', conditions: [], variant: 'on' }] })).toBe(
      'rules[0].name must be a non-empty string',
    );
  });

  it('names conditions: operator, attribute, values', () => {
    const withCondition = (c: unknown, index = 1) => ({
      ...checkout,
      rules: [
        checkout.rules![0],
        { conditions: [...Array<Condition>(index).fill({ attribute: 'a', op: 'exists' }), c], variant: 'on' },
      ],
    });
    expect(detailOf(withCondition({ attribute: 'a', op: 'like', values: ['x'] }, 0))).toBe(
      'rules[1].conditions[0].op must be one of eq, neq, in, notIn, contains, startsWith, endsWith, gt, gte, lt, lte, exists',
    );
    expect(detailOf(withCondition('eq'))).toBe('rules[1].conditions[1] must be an object');
    expect(detailOf(withCondition({ attribute: '', op: 'exists' }))).toBe(
      'rules[1].conditions[1].attribute must be a non-empty string',
    );
    expect(detailOf(withCondition({ attribute: 'a', op: 'eq' }))).toBe(
      'rules[1].conditions[1].values must be a non-empty array of strings, numbers and booleans (op is eq)',
    );
    expect(detailOf(withCondition({ attribute: 'a', op: 'in', values: [] }))).toContain(
      'rules[1].conditions[1].values must be',
    );
    expect(detailOf(withCondition({ attribute: 'a', op: 'in', values: 'NL' }))).toContain(
      'rules[1].conditions[1].values must be',
    );
    expect(detailOf(withCondition({ attribute: 'a', op: 'in', values: ['NL', null] }))).toBe(
      'rules[1].conditions[1].values[1] must be a string, a finite number or a boolean',
    );
    expect(detailOf(withCondition({ attribute: 'a', op: 'in', values: [{}] }))).toContain(
      'values[0] must be a string',
    );
    expect(detailOf(withCondition({ attribute: 'a', op: 'contains', values: [1] }))).toBe(
      'rules[1].conditions[1].values[0] must be a string (op is contains)',
    );
    expect(detailOf(withCondition({ attribute: 'a', op: 'gt', values: [true] }))).toBe(
      'rules[1].conditions[1].values[0] must be a number or a string (op is gt)',
    );
    // exists needs no values; given, they are checked and kept.
    expect(validateFlag(withCondition({ attribute: 'a', op: 'exists' })).rules![1]!.conditions[1]).toEqual({
      attribute: 'a',
      op: 'exists',
    });
    expect(detailOf(withCondition({ attribute: 'a', op: 'exists', values: [null] }))).toContain(
      'values[0] must be',
    );
  });

  it('names the rollout percentage', () => {
    for (const percentage of [-1, 100.5, Number.NaN, Number.POSITIVE_INFINITY, '50', undefined]) {
      expect(detailOf({ ...checkout, rollout: { variant: 'on', otherwise: 'off', percentage } })).toBe(
        'rollout.percentage must be between 0 and 100',
      );
    }
    for (const percentage of [0, 0.0001, 33.3333, 100]) {
      expect(
        validateFlag({ ...checkout, rollout: { variant: 'on', otherwise: 'off', percentage } }).rollout
          ?.percentage,
      ).toBe(percentage);
    }
    expect(detailOf({ ...checkout, rollout: 'half' })).toBe(
      'rollout must be an object with variant, otherwise and percentage',
    );
    expect(
      detailOf({
        ...checkout,
        rules: [{ conditions: [], rollout: { variant: 'on', otherwise: 'off', percentage: 101 } }],
      }),
    ).toBe('rules[0].rollout.percentage must be between 0 and 100');
  });

  it('lists every problem at once, at most 20, then how many more', () => {
    const error = invalid({
      key: 'Bad',
      type: 'boolean',
      variants: { on: 1 },
      defaultVariant: 'on',
      enabled: 1,
    });
    expect(error.details?.map((d) => d.field)).toEqual(['key', 'enabled', 'variants.on']);
    expect(String(error.params['detail'])).toBe(
      'key must match ^[a-z0-9][a-z0-9._-]{0,127}$; enabled must be a boolean; variants.on must be a boolean (type is boolean)',
    );
    const many = invalid({
      ...checkout,
      rules: Array.from({ length: 25 }, () => ({ conditions: [], variant: 'x' })),
    });
    expect(many.details).toHaveLength(20);
    expect(String(many.params['detail'])).toMatch(/; and 5 more$/);
  });
});

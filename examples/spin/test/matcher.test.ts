import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { groupKey, groupsCompatible } from '../src/domain/groups.js';
import { compatible, groupPositions, pickMatches } from '../src/domain/matcher.js';
import { GENDERS, type Gender, type Seeking, type Waiter } from '../src/domain/types.js';
import { referenceMatches } from './reference-matcher.js';

function waiter(userId: string, gender: Gender, seeking: Seeking, joinedAt: number): Waiter {
  return { userId, gender, seeking, joinedAt };
}

/** The pairs as "first+second" user ids, in the order the matcher made them. */
function ids(pairs: readonly { first: Waiter; second: Waiter }[]): string[] {
  return pairs.map((pair) => `${pair.first.userId}+${pair.second.userId}`);
}

describe('compatibility', () => {
  const straightMan = waiter('m', 'man', ['woman'], 0);
  const straightWoman = waiter('w', 'woman', ['man'], 0);
  const gayMan = waiter('g', 'man', ['man'], 0);
  const lesbian = waiter('l', 'woman', ['woman'], 0);
  const biMan = waiter('bm', 'man', ['woman', 'man'], 0);
  const biWoman = waiter('bw', 'woman', ['man', 'woman'], 0);
  const nonbinarySeekingNonbinary = waiter('n', 'nonbinary', ['nonbinary'], 0);
  const nonbinarySeekingWomen = waiter('nw', 'nonbinary', ['woman'], 0);
  const womanSeekingNonbinary = waiter('wn', 'woman', ['nonbinary'], 0);

  it.each([
    ['straight man and straight woman', straightMan, straightWoman, true],
    ['two straight men', straightMan, { ...straightMan, userId: 'm2' }, false],
    ['two gay men', gayMan, { ...gayMan, userId: 'g2' }, true],
    ['gay man and straight man (only one seeks the other)', gayMan, straightMan, false],
    ['two lesbians', lesbian, { ...lesbian, userId: 'l2' }, true],
    ['lesbian and straight woman', lesbian, straightWoman, false],
    ['bisexual man and straight woman', biMan, straightWoman, true],
    ['bisexual man and gay man', biMan, gayMan, true],
    ['bisexual man and straight man', biMan, straightMan, false],
    ['bisexual woman and bisexual man', biWoman, biMan, true],
    [
      'two nonbinary people seeking nonbinary people',
      nonbinarySeekingNonbinary,
      { ...nonbinarySeekingNonbinary, userId: 'n2' },
      true,
    ],
    [
      'nonbinary seeking women and woman seeking nonbinary',
      nonbinarySeekingWomen,
      womanSeekingNonbinary,
      true,
    ],
    ['nonbinary seeking women and straight woman', nonbinarySeekingWomen, straightWoman, false],
  ] as const)('%s', (_name, a, b, expected) => {
    expect(compatible(a, b)).toBe(expected);
    expect(compatible(b, a)).toBe(expected);
  });

  it('never pairs a user with themself, even one who seeks their own gender', () => {
    expect(compatible(gayMan, { ...gayMan, joinedAt: 5 })).toBe(false);
    expect(pickMatches([gayMan, { ...gayMan, joinedAt: 5 }])).toEqual([]);
  });

  it('names groups canonically whatever the order of the sought genders', () => {
    expect(groupKey(biWoman)).toBe('woman:woman+man');
    expect(groupKey({ gender: 'woman', seeking: ['woman', 'man'] })).toBe('woman:woman+man');
    expect(groupKey({ gender: 'nonbinary', seeking: ['nonbinary', 'man', 'woman'] })).toBe(
      'nonbinary:woman+man+nonbinary',
    );
    expect(groupsCompatible(biWoman, biMan)).toBe(true);
  });
});

describe('pickMatches', () => {
  it('pairs first come, first served: a woman gets the man who has waited longest', () => {
    const queue = [
      waiter('m3', 'man', ['woman'], 3000),
      waiter('m1', 'man', ['woman'], 1000),
      waiter('m2', 'man', ['woman'], 2000),
      waiter('w', 'woman', ['man'], 4000),
    ];
    expect(ids(pickMatches(queue))).toEqual(['m1+w']);
  });

  it('breaks ties in joinedAt by userId', () => {
    const queue = [
      waiter('b', 'man', ['woman'], 1000),
      waiter('a', 'man', ['woman'], 1000),
      waiter('w', 'woman', ['man'], 2000),
    ];
    expect(ids(pickMatches(queue))).toEqual(['a+w']);
  });

  it('does not starve an old waiter: a younger one from another group never takes the partner first', () => {
    // A straight woman has waited longest; a bisexual woman (another group) came later. The man who
    // arrives goes to the straight woman, whatever order the groups are kept in.
    const queue = [
      waiter('bi', 'woman', ['woman', 'man'], 2000),
      waiter('straight', 'woman', ['man'], 1000),
      waiter('man', 'man', ['woman'], 3000),
    ];
    expect(ids(pickMatches(queue))).toEqual(['straight+man']);
    // The other way round the bisexual woman is older, so she is paired.
    const swapped = queue.map((w) => (w.userId === 'bi' ? { ...w, joinedAt: 500 } : w));
    expect(ids(pickMatches(swapped))).toEqual(['bi+man']);
    // A man who has waited longest of all gets the woman who has waited longest, whatever her group.
    const manFirst = [
      waiter('straight', 'woman', ['man'], 2000),
      waiter('bi', 'woman', ['woman', 'man'], 1000),
      waiter('man', 'man', ['woman'], 0),
    ];
    expect(ids(pickMatches(manFirst))).toEqual(['man+bi']);
  });

  it('serves an old waiter at the first chance across rounds while younger people keep arriving', () => {
    const old = waiter('old', 'man', ['woman'], 0);
    let queue: Waiter[] = [old];
    const matchedAt: Record<string, number> = {};
    for (let round = 1; round <= 6; round += 1) {
      // Every round a younger bisexual man joins; in round 4 the first woman arrives.
      queue.push(waiter(`bi${round}`, 'man', ['woman', 'man'], round * 1000));
      if (round === 4) queue.push(waiter('woman', 'woman', ['man'], round * 1000 + 500));
      for (const pair of pickMatches(queue)) {
        matchedAt[pair.first.userId] = round;
        matchedAt[pair.second.userId] = round;
      }
      queue = queue.filter((w) => matchedAt[w.userId] === undefined);
    }
    expect(matchedAt.old).toBe(4);
    expect(matchedAt.woman).toBe(4);
    // The bisexual men paired each other as they came (they seek men too).
    expect(matchedAt.bi1).toBe(2);
  });

  it('puts nobody in two pairs, even a userId given twice (its earlier entry counts)', () => {
    const queue = [
      waiter('w', 'woman', ['man'], 1000),
      waiter('w', 'woman', ['man'], 500),
      waiter('m1', 'man', ['woman'], 2000),
      waiter('m2', 'man', ['woman'], 3000),
    ];
    const pairs = pickMatches(queue);
    expect(ids(pairs)).toEqual(['w+m1']);
    expect(pairs[0]?.first.joinedAt).toBe(500);
  });

  it('leaves the input untouched and answers [] for an empty queue', () => {
    const queue = [waiter('m', 'man', ['woman'], 2), waiter('w', 'woman', ['man'], 1)];
    const copy = structuredClone(queue);
    pickMatches(queue);
    expect(queue).toEqual(copy);
    expect(pickMatches([])).toEqual([]);
  });

  it('gives each waiter its place within its own group', () => {
    const positions = groupPositions([
      waiter('m2', 'man', ['woman'], 2000),
      waiter('w1', 'woman', ['man'], 1500),
      waiter('m1', 'man', ['woman'], 1000),
      waiter('b1', 'man', ['man', 'woman'], 500),
    ]);
    expect(Object.fromEntries(positions)).toEqual({ b1: 1, m1: 1, w1: 1, m2: 2 });
  });
});

describe('pickMatches over random queues (property)', () => {
  const seeking = fc
    .subarray([...GENDERS], { minLength: 1 })
    .chain((genders) => fc.shuffledSubarray(genders, { minLength: genders.length }))
    .map((genders) => genders as unknown as Seeking);
  const queue = fc
    .array(
      fc.record({
        gender: fc.constantFrom(...GENDERS),
        seeking,
        // A narrow range of times, so ties in joinedAt are common.
        joinedAt: fc.integer({ min: 0, max: 30 }),
      }),
      { maxLength: 60 },
    )
    .map((rows) => rows.map((row, i) => ({ ...row, userId: `u${String(i).padStart(2, '0')}` })));

  it('matches nobody twice, only compatible pairs, leaves no compatible pair, and follows the rule exactly', () => {
    fc.assert(
      fc.property(queue, (waiting) => {
        const pairs = pickMatches(waiting);
        const used = pairs.flatMap((pair) => [pair.first.userId, pair.second.userId]);
        expect(new Set(used).size).toBe(used.length);
        for (const pair of pairs) {
          expect(compatible(pair.first, pair.second)).toBe(true);
          expect(pair.first.joinedAt).toBeLessThanOrEqual(pair.second.joinedAt);
        }
        const left = waiting.filter((w) => !used.includes(w.userId));
        for (const a of left) for (const b of left) expect(compatible(a, b)).toBe(false);
        expect(ids(pairs)).toEqual(ids(referenceMatches(waiting)));
      }),
      { numRuns: 500, seed: 15 },
    );
  });
});

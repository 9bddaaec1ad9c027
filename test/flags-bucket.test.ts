// Rollout buckets at the edges of UTF-8: the bucket is documented as a hash of the UTF-8 bytes, so an
// SDK in another language (or a SQL query over the audit log) that hashes the same bytes finds the
// same bucket. Characters at the boundary of each encoding length, surrogate pairs at the edges of
// their ranges and every kind of broken pair must encode exactly as UTF-8 does; random strings
// (flags-evaluate.test.ts) almost never land on these code units.
import { describe, expect, it } from 'vitest';
import { BUCKETS, bucketOf, inRollout } from '../src/flags/bucket.js';

/** The documented function over Node's own UTF-8 encoder (lone surrogates become U+FFFD there too). */
function utf8Bucket(flagKey: string, targetingKey: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(`${flagKey}\u0000${targetingKey}`, 'utf8'))
    h = Math.imul(h ^ byte, 0x01000193);
  for (const [shift, multiplier] of [
    [16, 0x85ebca6b],
    [13, 0xc2b2ae35],
  ] as const) {
    h = Math.imul(h ^ (h >>> shift), multiplier);
  }
  return ((h ^ (h >>> 16)) >>> 0) % BUCKETS;
}

const char = (code: number) => String.fromCharCode(code);

describe('bucketOf encodes every code unit as UTF-8 does', () => {
  it('at the boundary of each encoding length (1, 2, 3 bytes)', () => {
    for (const code of [0x00, 0x7f, 0x80, 0xff, 0x7ff, 0x800, 0xfff, 0xd7ff, 0xe000, 0xfffd, 0xffff]) {
      for (const key of [char(code), `a${char(code)}`, `${char(code)}z`]) {
        expect(bucketOf('flag', key), `U+${code.toString(16)}`).toBe(utf8Bucket('flag', key));
      }
    }
  });

  it('surrogate pairs at the edges of both ranges (4 bytes)', () => {
    for (const [high, low] of [
      [0xd800, 0xdc00],
      [0xd800, 0xdfff],
      [0xdbff, 0xdc00],
      [0xdbff, 0xdfff],
      [0xd83d, 0xde00], // 😀
    ] as const) {
      const key = `${char(high)}${char(low)}`;
      expect(bucketOf('flag', key), key).toBe(utf8Bucket('flag', key));
      expect(bucketOf('flag', `x${key}y`)).toBe(utf8Bucket('flag', `x${key}y`));
    }
  });

  it('broken pairs: lone surrogates anywhere count as U+FFFD, the next character kept', () => {
    const broken = [
      [0xd800], // a high one at the end
      [0xdbff],
      [0xdc00], // a low one alone
      [0xdfff],
      [0xdc00, 0xd800], // low then high: two lone ones
      [0xdc00, 0xdc00], // low then low
      [0xdfff, 0xdc00],
      [0xd800, 0xd800], // high then high
      [0xd800, 0xdbff],
      [0xd800, 0x61], // high then ASCII
      [0xdbff, 0xe000], // high then the first code unit past the low range
      [0xd800, 0xdbff, 0xdc00], // a lone high, then a pair
    ];
    for (const codes of broken) {
      const key = String.fromCharCode(...codes);
      const shown = codes.map((c) => c.toString(16)).join(' ');
      expect(bucketOf('flag', key), shown).toBe(utf8Bucket('flag', key));
      expect(bucketOf('flag', `${key}!`), shown).toBe(utf8Bucket('flag', `${key}!`));
    }
    expect(bucketOf('flag', '\udc00')).toBe(bucketOf('flag', '\ufffd'));
  });

  it('the flag key is hashed the same way as the targeting key', () => {
    for (const flagKey of ['é', '€', '😀', '\ud800', '\udfff-x']) {
      expect(bucketOf(flagKey, 'user-1'), flagKey).toBe(utf8Bucket(flagKey, 'user-1'));
    }
  });
});

describe('inRollout at the threshold', () => {
  it('a key whose bucket equals the threshold is out; one bucket more of rollout lets it in', () => {
    const key = 'user-42';
    const bucket = bucketOf('checkout', key);
    expect(inRollout('checkout', key, bucket / 10_000)).toBe(false);
    expect(inRollout('checkout', key, (bucket + 1) / 10_000)).toBe(true);
  });

  it('percentages round to the nearest bucket, neither truncated nor rounded up', () => {
    const bucket = bucketOf('checkout', 'user-42');
    expect(inRollout('checkout', 'user-42', (bucket + 0.6) / 10_000)).toBe(true);
    expect(inRollout('checkout', 'user-42', (bucket + 0.4) / 10_000)).toBe(false);
  });
});

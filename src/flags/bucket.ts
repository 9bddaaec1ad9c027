/**
 * Percentage rollouts: a stable hash of (flag key, targeting key) onto 10⁶ buckets.
 *
 * The hash is part of the stored data's meaning: changing it reshuffles every running rollout (people
 * who had a feature lose it, others gain it). `test/flags-evaluate.test.ts` pins a few golden values
 * so that such a change fails loudly.
 */

/** How many buckets a rollout divides targeting keys into: one per 0.0001 percent. */
export const BUCKETS = 1_000_000;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * The bucket of a targeting key for one flag: an integer in [0, {@link BUCKETS}).
 *
 * It is the 32-bit FNV-1a hash of the UTF-8 bytes of `flagKey + '\u0000' + targetingKey` (a lone
 * surrogate encodes as U+FFFD, as `TextEncoder` does), passed through MurmurHash3's `fmix32`
 * finalizer (FNV alone mixes the last bytes poorly, and keys like `user-1`, `user-2` differ only
 * there), modulo {@link BUCKETS}. The same on every machine and Node version; no randomness, no
 * allocation. The flag key is part of the input so that each flag splits people independently.
 *
 * Modulo bias is negligible: 2³² = 4294 × 10⁶ + 967296, so the first 967296 buckets get 4295 hash
 * values and the others 4294; a rollout's share is off by at most 8 parts per million of itself.
 */
export function bucketOf(flagKey: string, targetingKey: string): number {
  let h = hashUtf8(FNV_OFFSET, flagKey);
  h = Math.imul(h, FNV_PRIME); // the separator byte 0x00: h ^ 0 === h
  h = hashUtf8(h, targetingKey);
  return fmix32(h) % BUCKETS;
}

/**
 * Whether a targeting key is in a `percentage` (0–100) rollout of a flag: its bucket is below
 * `Math.round(percentage × 10⁴)`.
 *
 * Monotonic: the threshold never decreases as the percentage grows, so raising the percentage never
 * removes anyone, and lowering it from p2 to p1 removes exactly the keys whose bucket is in
 * [round(p1 × 10⁴), round(p2 × 10⁴)) — the most recently added first. 0 includes nobody, 100
 * everybody; below 0 (or NaN) counts as 0 and above 100 as 100.
 */
export function inRollout(flagKey: string, targetingKey: string, percentage: number): boolean {
  return bucketOf(flagKey, targetingKey) < Math.round(percentage * 10_000);
}

/** Feeds the UTF-8 encoding of `text` into a 32-bit FNV-1a state without materialising the bytes. */
function hashUtf8(state: number, text: string): number {
  let h = state;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, FNV_PRIME);
      continue;
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), FNV_PRIME);
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < length ? text.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        const code = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        h = Math.imul(h ^ (0xf0 | (code >> 18)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | ((code >> 12) & 0x3f)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | ((code >> 6) & 0x3f)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | (code & 0x3f)), FNV_PRIME);
        continue;
      }
      c = 0xfffd;
    }
    h = Math.imul(h ^ (0xe0 | (c >> 12)), FNV_PRIME);
    h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), FNV_PRIME);
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME);
  }
  return h;
}

/** MurmurHash3's 32-bit finalizer: every input bit affects every output bit. Returns an unsigned int. */
function fmix32(input: number): number {
  let h = input;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

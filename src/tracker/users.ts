// Users affected per error group, counted without storing who they were: a HyperLogLog sketch
// (Flajolet et al. 2007, with linear counting for small numbers) of the users' hashed ids, kept
// in the group's row and merged at each write.
import { createHash } from 'node:crypto';
import type { UserContext } from './types.js';

/** Register index bits: 2^10 registers of one byte, a standard error of 1.04 / √1024 ≈ 3.3 %. */
const P = 10;
const M = 1 << P;
const ALPHA = 0.7213 / (1 + 1.079 / M);

/** A sketch: one byte per register, the highest rank seen there. */
export type UserSketch = Uint8Array;

/** The key a user is counted by: `id`, else `username`; undefined when the context names nobody. */
export function userKey(user: UserContext | undefined): string | undefined {
  if (user === undefined) return undefined;
  const { id, username } = user;
  if (typeof id === 'string' && id !== '') return `id:${id}`;
  if (typeof username === 'string' && username !== '') return `username:${username}`;
  return undefined;
}

/** A sketch of `keys`, merged into `base` (a copy: `base` is left as it is). */
export function sketchOf(keys: Iterable<string>, base?: UserSketch): UserSketch {
  const sketch = base === undefined ? new Uint8Array(M) : Uint8Array.from(base);
  for (const key of keys) {
    const digest = createHash('sha256').update(key).digest();
    const index = (((digest[0] ?? 0) << 8) | (digest[1] ?? 0)) >>> (16 - P);
    const rank = Math.clz32(digest.readUInt32BE(2)) + 1;
    if (rank > (sketch[index] ?? 0)) sketch[index] = rank;
  }
  return sketch;
}

/** How many distinct keys went into `sketch` (0 for an empty one). */
export function estimateUsers(sketch: UserSketch): number {
  let sum = 0;
  let zeros = 0;
  for (const rank of sketch) {
    sum += 2 ** -rank;
    if (rank === 0) zeros += 1;
  }
  if (zeros === M) return 0;
  const raw = (ALPHA * M * M) / sum;
  // Small numbers: linear counting over the empty registers is far more precise.
  return Math.round(raw <= 2.5 * M && zeros > 0 ? M * Math.log(M / zeros) : raw);
}

/** The sketch as stored (base64 text, the same on SQLite and PostgreSQL). */
export function encodeSketch(sketch: UserSketch): string {
  return Buffer.from(sketch).toString('base64');
}

/** A stored sketch; undefined for none or one that is not a sketch of this size. */
export function decodeSketch(text: string | null | undefined): UserSketch | undefined {
  if (text === null || text === undefined) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.length === M ? new Uint8Array(bytes) : undefined;
}

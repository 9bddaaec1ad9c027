import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** The prefix of every stored admin key (so a leaked one is recognisable, e.g. by secret scanners). */
export const KEY_PREFIX = 'bwk_';

/** What a stored key looks like: the prefix and 32 random bytes in base64url (43 characters). */
const KEY_SHAPE = /^bwk_[A-Za-z0-9_-]{43}$/;

/** A new random secret: 32 bytes (256 bits) in base64url. */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** A new admin key: `bwk_` and 32 random bytes in base64url. */
export function newKey(): string {
  return `${KEY_PREFIX}${newSecret()}`;
}

/** Whether `text` has the shape of a stored key (only those are looked up in the store). */
export function looksLikeKey(text: string): boolean {
  return KEY_SHAPE.test(text);
}

/**
 * The SHA-256 of a secret, hex: what the store keeps of keys, session ids and login tokens. A plain
 * digest is enough: each is 256 random bits, so there is nothing to guess a preimage from.
 */
export function digestOf(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Compares two strings in time that depends only on their length (both are digested first). */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

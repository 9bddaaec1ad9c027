import type { BackoffOptions } from './types.js';

export const DEFAULT_BACKOFF: Required<BackoffOptions> = {
  type: 'exponential',
  delay: 1000,
  maxDelay: 3_600_000,
  jitter: 0.5,
};

/**
 * Delay before retry number `retry` (1 = the first retry): `delay` (fixed) or `delay × 2^(retry−1)`
 * (exponential), capped at `maxDelay`, minus a random share of up to `jitter` of it ("equal
 * jitter": never below `(1 − jitter) ×` the nominal delay, so retries stay spread but bounded).
 */
export function retryDelay(backoff: BackoffOptions | undefined, retry: number, random = Math.random): number {
  const b = { ...DEFAULT_BACKOFF, ...backoff };
  const nominal = b.type === 'fixed' ? b.delay : b.delay * 2 ** Math.min(retry - 1, 52);
  const capped = Math.min(nominal, b.maxDelay);
  return Math.round(capped - capped * b.jitter * random());
}

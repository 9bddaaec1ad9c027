import { LRUCache } from 'lru-cache';
import type { LoginDecision } from './types.js';

/** Options of {@link LoginLimiter}. */
export interface LoginLimiterOptions {
  /** Attempts allowed per client network and window (default 10). */
  limit?: number;
  /** The window, ms (default 60 000). */
  windowMs?: number;
  /** Client networks tracked at once (default 10 000); the least recently seen are forgotten first. */
  maxNetworks?: number;
  /** Clock, ms since the epoch (default `Date.now`). */
  now?: () => number;
}

interface Window {
  start: number;
  count: number;
}

/**
 * Login attempts per client network in a fixed window (default 10 a minute), in this process's
 * memory: a map update per attempt, no I/O. Bounded: at most `maxNetworks` windows are kept (an LRU),
 * so a flood from many networks costs memory up to the cap, never more. Each process of a cluster
 * counts on its own.
 */
export class LoginLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #windows: LRUCache<string, Window>;

  constructor(options: LoginLimiterOptions = {}) {
    this.#limit = options.limit ?? 10;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#now = options.now ?? Date.now;
    this.#windows = new LRUCache({ max: options.maxNetworks ?? 10_000 });
  }

  /** Counts one attempt of `network` (see `clientNetwork`); refused beyond the limit until the window ends. */
  attempt(network: string): LoginDecision {
    const now = this.#now();
    let window = this.#windows.get(network);
    if (window === undefined || now - window.start >= this.#windowMs) {
      window = { start: now, count: 0 };
      this.#windows.set(network, window);
    }
    window.count += 1;
    const retryAfterS = Math.max(1, Math.ceil((window.start + this.#windowMs - now) / 1000));
    return { allowed: window.count <= this.#limit, retryAfterS };
  }
}

import lockfile from 'proper-lockfile';
import { bulwarkError, isBulwarkError } from '../errors/index.js';
import type { ConfigLogger, LockTiming } from './types.js';

/** Resolved lock timing. */
export interface LockSettings {
  staleMs: number;
  updateMs: number;
  waitMs: number;
}

/** Fills the defaults: stale after 5 s, refreshed every 1 s, writers wait up to 8 s. */
export function lockSettings(timing: LockTiming = {}): LockSettings {
  const staleMs = timing.staleMs ?? 5000;
  return {
    staleMs,
    updateMs: timing.updateMs ?? Math.min(1000, Math.floor(staleMs / 2)),
    waitMs: timing.waitMs ?? staleMs + 3000,
  };
}

/** Handed to the critical section: it must not commit a write once `compromised()` is true. */
export interface LockGuard {
  compromised(): boolean;
}

/**
 * Runs `fn` holding the inter-process lock of `file` (proper-lockfile: a `<file>.lock` directory,
 * refreshed every `updateMs`, taken over when older than `staleMs`, so a writer killed with -9
 * blocks the others for at most `staleMs`). Waits up to `waitMs` with jittered backoff, then throws
 * `BWK_ERR_CONFIG_LOCKED`. A compromised lock (taken over while held: the process stalled longer
 * than `staleMs`, or the lock directory was removed) is logged and marks the guard; it never
 * throws (proper-lockfile's default would crash the process from a timer).
 */
export async function withFileLock<T>(
  file: string,
  settings: LockSettings,
  logger: ConfigLogger,
  fn: (guard: LockGuard) => Promise<T>,
): Promise<T> {
  let compromised = false;
  const started = Date.now();
  let release: (() => Promise<void>) | undefined;
  for (let attempt = 0; release === undefined; attempt++) {
    try {
      release = await lockfile.lock(file, {
        stale: settings.staleMs,
        update: settings.updateMs,
        realpath: false,
        retries: 0,
        onCompromised: (error: Error) => {
          compromised = true;
          logger.error({ err: error, file }, 'config lock compromised: this write will not be committed');
        },
      });
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'ELOCKED') throw error;
      const waited = Date.now() - started;
      if (waited >= settings.waitMs) {
        throw bulwarkError('BWK_ERR_CONFIG_LOCKED', { file, waitedMs: waited }, { cause: error });
      }
      const backoff = Math.min(200, 5 * 2 ** Math.min(attempt, 6));
      await new Promise((resolve) => setTimeout(resolve, backoff / 2 + Math.random() * backoff));
    }
  }
  try {
    return await fn({ compromised: () => compromised });
  } finally {
    try {
      await release();
    } catch (error) {
      // Released already because it was compromised: reported by onCompromised.
      if (!compromised && !isBulwarkError(error))
        logger.warn({ err: error, file }, 'config lock release failed');
    }
  }
}

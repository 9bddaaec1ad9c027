import { bulwarkError, isBulwarkError, type BulwarkError } from '../errors/index.js';
import type { StoreEngine } from './types.js';

/** A one-line reason for a driver error, for error messages (pg's connect errors can be aggregates). */
export function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return error.errors.map(describeError).join('; ');
  }
  if (error instanceof Error) return error.message === '' ? error.name : error.message;
  return String(error);
}

/** `BWK_ERR_STORE_UNAVAILABLE` for `engine`, with the driver error as `cause`. */
export function unavailableError(engine: StoreEngine, detail: string, cause?: unknown): BulwarkError {
  return bulwarkError('BWK_ERR_STORE_UNAVAILABLE', { engine, detail }, { cause });
}

/**
 * Runs one store operation and turns any driver failure (connection lost, store closed, locked file)
 * into `BWK_ERR_STORE_UNAVAILABLE`, so callers and the failover wrapper recognise store trouble by
 * code alone. Catalogue errors (a conflict, an invalid value) pass through unchanged.
 */
export async function guard<T>(engine: StoreEngine, operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (isBulwarkError(error)) throw error;
    throw unavailableError(engine, `${operation} failed: ${describeError(error)}`, error);
  }
}

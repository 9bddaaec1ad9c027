import { bulwarkError } from '../errors/index.js';
import { PREVIEW_BYTES } from './preview.js';
import type { JobOptions, PageOptions } from './types.js';

const QUEUE_NAME = /^[\w.:-]{1,200}$/;

/** A `BWK_ERR_QUEUE_OPTIONS` error whose message names the offending option. */
export function optionsError(detail: string): Error {
  return bulwarkError('BWK_ERR_QUEUE_OPTIONS', { detail });
}

/** `queue` if it is a valid queue name (1–200 of letters, digits, `_ . : -`); else throws `BWK_ERR_QUEUE_OPTIONS`. */
export function checkQueue(queue: unknown): string {
  if (typeof queue !== 'string' || !QUEUE_NAME.test(queue))
    throw optionsError(`queue name ${JSON.stringify(queue)} must be 1–200 of letters, digits, _ . : -`);
  return queue;
}

/** Throws `BWK_ERR_QUEUE_OPTIONS` unless `value` is undefined or a positive integer. */
export function positiveInt(value: unknown, name: string): void {
  if (value !== undefined && (!Number.isInteger(value) || (value as number) < 1))
    throw optionsError(`${name} must be a positive integer`);
}

function nonNegative(value: unknown, name: string): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value < 0))
    throw optionsError(`${name} must be a number ≥ 0`);
}

/** The job data as JSON, or `BWK_ERR_QUEUE_DATA_INVALID` when JSON cannot hold it. */
export function serialise(queue: string, data: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (error) {
    throw bulwarkError('BWK_ERR_QUEUE_DATA_INVALID', { queue, detail: (error as Error).message });
  }
  if (json === undefined)
    throw bulwarkError('BWK_ERR_QUEUE_DATA_INVALID', { queue, detail: 'the data is not a JSON value' });
  return json;
}

/** Throws `BWK_ERR_QUEUE_OPTIONS`, naming the option, unless every job option is valid. */
export function checkJobOptions(opts: JobOptions): void {
  if (opts.id !== undefined && (typeof opts.id !== 'string' || opts.id.length === 0 || opts.id.length > 200))
    throw optionsError('id must be a string of 1–200 characters');
  // BullMQ reserves them, and a job spooled on the embedded queue may be replayed into BullMQ.
  if (opts.id === '0' || opts.id?.startsWith('0:'))
    throw optionsError("id must not be '0' or start with '0:'");
  positiveInt(opts.attempts, 'attempts');
  nonNegative(opts.delay, 'delay');
  if (opts.priority !== undefined && !Number.isInteger(opts.priority))
    throw optionsError('priority must be an integer');
  positiveInt(opts.timeout, 'timeout');
  const b = opts.backoff;
  if (b !== undefined) {
    if (b.type !== undefined && b.type !== 'exponential' && b.type !== 'fixed')
      throw optionsError('backoff.type must be exponential or fixed');
    nonNegative(b.delay, 'backoff.delay');
    nonNegative(b.maxDelay, 'backoff.maxDelay');
    if (b.jitter !== undefined && (typeof b.jitter !== 'number' || b.jitter < 0 || b.jitter > 1))
      throw optionsError('backoff.jitter must be between 0 and 1');
  }
}

/** A list's `limit` within 1–1 000 (default 100). */
export function pageLimit(limit = 100): number {
  return Math.min(Math.max(1, Math.floor(limit)), 1000);
}

/** {@link PageOptions} with their defaults; `BWK_ERR_QUEUE_OPTIONS` for a preview size that is not a positive integer. */
export function pageOptions(opts: PageOptions): { limit: number; previewBytes: number } {
  positiveInt(opts.previewBytes, 'previewBytes');
  return { limit: pageLimit(opts.limit), previewBytes: opts.previewBytes ?? PREVIEW_BYTES };
}

import { bulwarkError } from '../errors/index.js';
import type { Job, JobHandler } from './types.js';

/** The context of an attempt nothing can abort (no timeout, no owner that aborts): one for all. */
const UNABORTABLE = Object.freeze({ signal: new AbortController().signal });

/**
 * Runs one attempt of a handler: with a timeout, the attempt fails with `BWK_ERR_QUEUE_JOB_TIMEOUT`
 * and `controller` (created here when not given) aborts when it passes. Without a timeout or a
 * controller the attempt costs no allocation besides the handler's own promise.
 */
export function runHandler(
  handler: JobHandler,
  job: Job,
  timeoutMs: number | undefined,
  given?: AbortController,
): Promise<unknown> {
  if (timeoutMs === undefined)
    return handler(job, given === undefined ? UNABORTABLE : { signal: given.signal });
  return runWithTimeout(handler, job, timeoutMs, given);
}

async function runWithTimeout(
  handler: JobHandler,
  job: Job,
  timeoutMs: number,
  given: AbortController | undefined,
): Promise<void> {
  const controller = given ?? new AbortController();
  const run = handler(job, { signal: controller.signal });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      run,
      new Promise((_, reject) => {
        timer = setTimeout(() => {
          const error = bulwarkError('BWK_ERR_QUEUE_JOB_TIMEOUT', {
            queue: job.queue,
            id: job.id,
            timeoutMs,
          });
          // Rejected before the abort: a handler that returns as soon as it is aborted must not
          // win the race and count as completed.
          reject(error);
          controller.abort(error);
        }, timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

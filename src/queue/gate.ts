import type { JobHandler } from './types.js';

/** `handler`, run at most `limit` at a time; callers beyond wait their turn in order. */
export function gate(limit: number, handler: JobHandler): JobHandler {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (job, ctx) => {
    // A finishing call hands its slot straight to the next waiter, so no newcomer can slip in between.
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    else running += 1;
    try {
      return await handler(job, ctx);
    } finally {
      const next = waiting.shift();
      if (next === undefined) running -= 1;
      else next();
    }
  };
}

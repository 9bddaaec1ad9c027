import type { JobQueue, TypedJobQueue } from './types.js';

/** Views `queues` through a map of queue names to payload types (types only: no runtime checks). */
export function typedQueues<M extends Record<string, unknown>>(queues: JobQueue): TypedJobQueue<M> {
  return {
    add: (queue, data, opts) => queues.add(queue, data, opts),
    process: (queue, handler, opts) => queues.process(queue, handler, opts),
    repeat: (queue, name, data, opts) => queues.repeat(queue, name, data, opts),
    untyped: queues,
  };
}

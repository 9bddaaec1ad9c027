export type * from './types.js';
export { EmbeddedJobQueue, type EmbeddedJobQueueOptions } from './embedded.js';
export { effectOnce, jobEffectKey, type EffectResult } from './effects.js';
export { QueueMetrics } from './metrics.js';
export { retryDelay } from './backoff.js';
export { RedisJobQueue, type RedisJobQueueOptions } from './redis.js';
export { typedQueues } from './typed.js';

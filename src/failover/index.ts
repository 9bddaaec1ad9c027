export { Failover } from './engine.js';
export { observeFailover } from './observe.js';
export type * from './types.js';

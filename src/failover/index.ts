export { Failover } from './engine.js';
export { observeFailover } from './observe.js';
export type * from './types.js';
export {
  Pacer,
  paced,
  replayRest,
  catchUpRuns,
  eventLoopLoad,
  REPLAY_SHARE_BUSY,
  REPLAY_SHARE_IDLE,
  type ReplayPacing,
} from './pacing.js';

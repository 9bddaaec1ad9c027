/**
 * Spin's domain core: the matcher and the wait estimator, pure logic with no I/O and no clock of
 * its own (every time is passed in, in ms). The service around it stores the queue, calls
 * `pickMatches` every round, feeds `WaitStats` the events and shows its estimates.
 */
export * from './types.js';
export { groupKey, groupsCompatible } from './groups.js';
export { compatible, groupPositions, pickMatches, queueOrder } from './matcher.js';
export { WaitStats, type EstimateContext, type GroupRates, type WaitStatsOptions } from './estimate.js';
export {
  BALANCED_MIX,
  IMBALANCED_MIX,
  mixStreams,
  seededRandom,
  simulateArrivals,
  type ArrivalStream,
  type MixShare,
  type Patience,
  type SimulatedArrival,
  type SimulationOptions,
  type SimulationPhase,
} from './simulate.js';

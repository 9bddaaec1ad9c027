export { HealthRegistry, type HealthIdentity, type HealthTimers } from './registry.js';
export type * from './types.js';

export { ConfigManager, type ConfigPath, type ConfigValue } from './manager.js';
export { formatOf } from './codec.js';
export { keyOf } from './schema.js';
export { envName } from './env.js';
export {
  REDACTED,
  type ChangeEvent,
  type ConfigFormat,
  type ConfigLayer,
  type ConfigLogger,
  type ConfigManagerOptions,
  type DiffEntry,
  type Explanation,
  type LockTiming,
  type RevisionInfo,
  type RevisionRecord,
  type StartReport,
  type WriteOptions,
} from './types.js';

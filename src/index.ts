export {
  createBulwark,
  DEFAULT_RATE_LIMIT_POLICY,
  VERSION,
  type Bulwark,
  type BulwarkOptions,
} from './runtime/create.js';
export { withAlertRules } from './runtime/alert-rules.js';
export type { AlertsConfig } from './alerts/config.js';
export type { AlertRule, AlertState, Severity } from './alerts/rules.js';
export {
  loadSettings,
  redactSettings,
  settingFields,
  type Settings,
  type SettingsInput,
} from './settings/index.js';
export {
  AppError,
  appError,
  isAppError,
  BulwarkError,
  bulwarkError,
  isBulwarkError,
  catalogue,
  type ErrorCode,
  type FieldProblem,
} from './errors/index.js';
export { HealthRegistry } from './health/index.js';
export type {
  CheckResult,
  HealthCheckDefinition,
  HealthReport,
  HealthStatus,
  Lifecycle,
} from './health/index.js';
export { Metrics } from './metrics/index.js';
export { createLogger, redactSecrets, SECRET_KEYS } from './logging/index.js';
export { createStore } from './runtime/store.js';
export type { AnyPart, Part, PartCore, PartServices, ToolFlag } from './parts/index.js';
export type {
  Store,
  StoreEngine,
  StoreOptions,
  KvEntry,
  KvRepository,
  AuditLog,
  AuditRecord,
} from './store/types.js';
export { AUDIT_REFUSED_TARGET } from './store/audit-retention.js';
export { installShutdown, type ShutdownOptions } from './runtime/shutdown.js';
export { TieredCache, MemoryCacheStore, RedisCacheStore } from './cache/index.js';
export type { CacheEntry, CacheStore, SetOptions } from './cache/index.js';
export type {
  AdaptiveThrottleOptions,
  BreakerOptions,
  BreakerState,
  CallOutcome,
  OutboundHttp,
  OutboundOptions,
  OutboundRequest,
  OutboundResponse,
  Protect,
  ProtectOptions,
  RetryOptions,
  UpstreamOptions,
  UpstreamView,
} from './outbound/index.js';
export { Failover, observeFailover } from './failover/index.js';
export type {
  Backlog,
  BacklogSource,
  DependencyMode,
  FailoverOptions,
  ModeChange,
} from './failover/index.js';
export { createRateLimiter, keyFrom, hashApiKey } from './ratelimit/index.js';
export {
  PRIORITIES,
  SHED_REASONS,
  type Priority,
  type Protection,
  type ProtectionOptions,
  type ShedReason,
} from './protection/index.js';
export { clientNetwork } from './ratelimit/client-network.js';
export type {
  RateLimiter,
  RateLimitPolicy,
  RateLimitDecision,
  RateLimiterOptions,
} from './ratelimit/index.js';
export { EmbeddedJobQueue, effectOnce, jobEffectKey, retryDelay, typedQueues } from './queue/index.js';
export type * from './queue/types.js';
export { FlagService, type FlagProvenance, type FlagChange, type FlagActor } from './flags/service.js';
export { BulwarkFlagProvider } from './flags/openfeature.js';
export type * from './flags/types.js';
export {
  GuardedRollouts,
  decide,
  type RolloutPlan,
  type RolloutState,
  type GuardDecision,
  type ArmStats,
} from './flags/guard.js';

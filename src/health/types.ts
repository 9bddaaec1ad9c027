/** Health status of draft-inadarei-api-health-check. */
export type HealthStatus = 'pass' | 'warn' | 'fail';

/** What one run of a check found. */
export interface CheckResult {
  status: HealthStatus;
  observedValue?: number | string | boolean;
  /** e.g. `ms`, `bytes`, `percent`. */
  observedUnit?: string;
  /** Why the status is not `pass`; shown to operators, so never a secret. */
  output?: string;
}

/** A registered health check. */
export interface HealthCheckDefinition {
  /** Key in the report, `component:measurement`, e.g. `store:responseTime`. Unique. */
  name: string;
  /** `datastore`, `component` or `system`. */
  componentType?: string;
  /**
   * A required dependency: while this check fails, readiness fails. Non-critical checks that fail
   * only make the report `warn`. Default true.
   */
  critical?: boolean;
  /**
   * Shown in the readiness report even when not critical (where a non-critical check can only
   * make it `warn`): for provenance operators want to see at the probe, e.g. `flags:source`.
   */
  readiness?: boolean;
  /** Time between runs in ms (default 5000). */
  intervalMs?: number;
  /** A run that takes longer counts as `fail` (default 1000 ms). The signal aborts it. */
  timeoutMs?: number;
  /** Runs the check. Throwing counts as `fail` with the error message as output. */
  check(signal: AbortSignal): Promise<CheckResult> | CheckResult;
}

/** One entry of `checks` in the health report. */
export interface CheckReport extends CheckResult {
  componentType?: string;
  /** ISO-8601 time of the run that produced this result. */
  time: string;
  /** Duration of that run in ms. */
  durationMs?: number;
}

/** The `application/health+json` body. */
export interface HealthReport {
  status: HealthStatus;
  version?: string;
  releaseId?: string;
  serviceId?: string;
  description?: string;
  output?: string;
  checks?: Record<string, CheckReport[]>;
}

/** Where the service is in its life: readiness fails unless `ready`. */
export type Lifecycle = 'starting' | 'ready' | 'stopping';

// The shapes of the supervisor's records, apart from records.ts so that a slot (which keeps its last
// crash record) and the records (which name a slot) need not import each other.

/** What is kept of an instance that ended without being asked to. */
export interface CrashRecord {
  at: string;
  slot: number;
  instanceId: string;
  pid: number | undefined;
  reason: string;
  exitCode: number | null;
  signal: string | null;
  uptimeMs: number;
  /** RSS at the last sample before it died, in bytes. */
  rssAtDeath: number | undefined;
  reportPath: string | undefined;
  lastLines: string[];
}

/** One graded recovery step and how it went. */
export interface RecoveryRecord {
  at: string;
  slot: number;
  instanceId: string;
  resource: 'memory' | 'cpu';
  step: 'warn' | 'soft' | 'medium' | 'hard';
  before: number;
  after?: number;
  helped?: boolean;
  /** What the app reported doing (soft and medium). */
  actions?: string[];
}

/** A supervisor event (also logged, counted in metrics and kept in a ring). */
export interface SupervisorEvent {
  at: string;
  type: string;
  slot?: number;
  instanceId?: string;
  detail?: Record<string, unknown>;
}

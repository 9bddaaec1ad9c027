/**
 * The IPC protocol between `bulwark supervise` and an app built on Bulwark (plain JSON messages
 * over Node's IPC channel; an app that ignores them is still supervised, by HTTP probes alone). It
 * lives on the app's side: the supervisor imports it from here, so an app never loads the supervisor.
 */
export type AppMessage =
  /**
   * Sent once at start: the app speaks the protocol (heartbeats, recovery requests); `reports`: it
   * answers hang report requests on the report pipe.
   */
  | { type: 'bulwark:hello'; pid: number; version: string; reports?: boolean }
  /** Sent from the event loop every `BULWARK_HEARTBEAT_MS`: its absence means the loop is blocked. */
  | { type: 'bulwark:heartbeat' }
  /** The app is ready to serve (it listens and its readiness checks pass). */
  | { type: 'bulwark:ready' }
  /** The reply to a recovery request: what the app did. */
  | { type: 'bulwark:recovered'; level: RecoveryLevel; actions: string[] };

/**
 * Soft and medium steps are asked of the app; `normal` says the pressure is gone. (The supervisor's
 * `hard` step needs nothing from the app: it is drained and restarted.)
 */
export type RecoveryLevel = 'soft' | 'medium' | 'normal';

/** Messages from the supervisor to the app. */
export type SupervisorMessage = {
  type: 'bulwark:recover';
  level: RecoveryLevel;
  resource: 'memory' | 'cpu';
  value: number;
  limit: number;
};

// The alert engine's options, apart from engine.ts so that its sender (sender.ts), which the engine
// creates, can read them without importing the engine.
import type { Logger } from 'pino';
import type { Store } from '../store/types.js';
import type { GroupOptions } from './grouping.js';
import type { InhibitRule, MaintenanceWindow } from './manager.js';
import type { Notification, Receiver } from './notifiers.js';
import type { AlertRule, Judged } from './rules.js';

/** Reads the value a rule judges: the series' mean over `windowMs` up to `now`, undefined if no point. */
export type SeriesReader = (series: string, windowMs: number, now: number) => Promise<number | undefined>;

/** Options of `AlertEngine` (engine.ts). */
export interface AlertEngineOptions {
  store: Store;
  logger: Logger;
  serviceId: string;
  instanceId: string;
  rules: AlertRule[];
  receivers: Receiver[];
  /** Receivers per rule (by name); default every receiver. */
  routes?: (rule: AlertRule) => string[];
  read: SeriesReader;
  /** Judges an anomaly rule: its value and band (src/alerts/anomaly.ts); anomaly rules fail without it. */
  judge?: (rule: AlertRule, now: number) => Promise<Judged>;
  /** Runs a rule's action when it starts firing (the caller records it in the audit log). */
  act?: (rule: AlertRule) => Promise<void>;
  evaluateEveryMs?: number;
  sendEveryMs?: number;
  /** The evaluator-and-sender lease (one instance at a time), default 15 000 ms. */
  leaseMs?: number;
  /** First retry delay, doubling up to `retryMaxMs` (defaults 1 000 and 60 000 ms). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Attempts before a notification is dead (default 50). */
  maxAttempts?: number;
  /** Notifications per receiver per minute; beyond, the rest wait (default 30). */
  receiverBudgetPerMinute?: number;
  deliver?: (receiver: Receiver, notification: Notification) => Promise<void>;
  /** A firing alert nobody acknowledged is notified again this often (default 4 h). */
  repeatIntervalMs?: number;
  /** Escalation of a firing, unacknowledged alert: after `afterMs`, also these receivers. */
  escalation?: (rule: AlertRule) => { afterMs: number; receivers: string[] }[];
  /** Grouping of notifications into digests (webhook, Slack, email receivers); default none. */
  group?: GroupOptions;
  /** Default `DEFAULT_INHIBIT` (manager.ts). */
  inhibit?: InhibitRule[];
  windows?: MaintenanceWindow[];
  /**
   * How long sent and dead notifications stay in the outbox (default 14 days: the weekly report
   * counts a week of them; pending ones stay until sent or dead). Pruned at most once an hour, by
   * the instance holding the lease.
   */
  outboxRetentionMs?: number;
  now?: () => number;
}

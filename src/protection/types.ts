// The load shedder's vocabulary: request classes, refusal reasons, waiters, the event loop's
// signals, the shedder's options and the state it reports (shedder.ts decides, index.ts wires).
import type { AdaptiveLimitOptions } from './limit.js';

/** Request classes, most important first; the index is the class's rank. */
export const PRIORITIES = ['critical', 'default', 'sheddable'] as const;
/** A request class: `critical` is shed last and keeps a reserved share of the limit. */
export type Priority = (typeof PRIORITIES)[number];

/** Why a request was refused or dropped. */
export const SHED_REASONS = [
  'overload',
  'queue-full',
  'queue-timeout',
  'client-gone',
  'deadline',
  'client-share',
] as const;
export type ShedReason = (typeof SHED_REASONS)[number];

/** A request waiting for a slot. */
export interface Waiter {
  readonly rank: number;
  /** The client's key with per-client fairness, else undefined. */
  readonly client?: string | undefined;
  readonly queuedAt: number;
  /** When its client stops waiting (ms on the shedder's clock), or +Infinity. */
  readonly deadlineAt: number;
  /** Whether the client has gone (its connection closed): then it is dropped, never run. */
  gone(): boolean;
  /** Called once: without a reason when admitted (in flight from then on), else why it was dropped. */
  resume(reason?: ShedReason): void;
}

/** What one interval of signals from the event loop says (see signals.ts). */
export interface LoopSignals {
  /** Event-loop delay p99 over the interval, ms. */
  delayP99Ms: number;
  /** Event-loop utilisation over the interval, 0..1. */
  utilisation: number;
  /** A garbage-collection pause longer than 20 ms happened in the interval. */
  gcPause: boolean;
}

/** Options of {@link Shedder}. */
export interface ShedderOptions {
  limit?: AdaptiveLimitOptions;
  /** Share of the limit only critical requests may use (default 0.2). */
  criticalReserve?: number;
  /**
   * Per-client fairness while overloaded: one client (the plugin's `clientKey`, by default its IP)
   * may hold at most this share of the limit (at least 2 slots); beyond it, it is refused with
   * `client-share` (HTTP 429). Default: off (behind a proxy that hides clients, one "client" is
   * everyone).
   */
  clientShare?: number;
  /** Requests that may wait for a slot, as a multiple of the limit (default 1, at least 16). */
  queueFactor?: number;
  /** CoDel's target and interval (ms; default 5 and 100). */
  queueTargetMs?: number;
  queueIntervalMs?: number;
  /**
   * The event loop is overloaded when its utilisation is at least `hotUtilisation` (default 0.9)
   * and its delay p99 at least `hotDelayMs` (default 50 ms): the service itself is busy, not
   * starved of CPU by another process (then shedding would not help).
   */
  hotUtilisation?: number;
  hotDelayMs?: number;
  /** Per tick: raise of a class's refusal probability while overloaded (default 0.05), fall once clear (0.02). */
  raiseStep?: number;
  fallStep?: number;
  now?: () => number;
  random?: () => number;
}

/** Counts since the start, by class rank. */
export interface ShedderCounts {
  admitted: number[];
  /** Answered below 500 after admission. */
  completed: number[];
  /** Refused or dropped, by class rank then reason. */
  shed: Record<ShedReason, number>[];
}

/** The shedding state of one interval, for logs, health and metrics. */
export interface ShedderState {
  limit: number;
  inFlight: number;
  queued: number;
  /** Refusal probability of each class (critical is always 0). */
  refusal: readonly number[];
  overloaded: boolean;
  minRttMs: number;
  rttMs: number;
  reversals: number;
}

/** The outcome of {@link Shedder.admit}: admitted now, queued (the waiter will be resumed), or refused. */
export type Admission = 'admitted' | 'queued' | ShedReason;

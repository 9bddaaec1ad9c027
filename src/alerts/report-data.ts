// The figures of a report, apart from reports.ts so that the text rendering (reports-text.ts), which
// reports.ts calls, can read them without importing it.
import type { ErrorGroup, ErrorState } from '../tracker/types.js';

/** One error group seen in the period; `count` is the group's lifetime count. */
export type ReportErrorGroup = Pick<
  ErrorGroup,
  'fingerprint' | 'type' | 'message' | 'culprit' | 'state' | 'count' | 'firstSeen' | 'lastSeen'
> & {
  /** First seen in the period. */
  new: boolean;
  /** First seen before the period and re-opened after a resolve at least once (not necessarily in it). */
  regressed: boolean;
};

/** The errors part: groups last seen in the period, and every group's state now. */
export interface ReportErrors {
  seen: number;
  new: number;
  regressed: number;
  /** The most frequent (lifetime count) of the groups seen, at most 10. */
  top: ReportErrorGroup[];
  /** Every stored group by its state now. */
  states: Record<ErrorState, number>;
}

/** The alerts part: transitions in the period (from the outbox) and the alerts firing now. */
export interface ReportAlerts {
  /** Distinct firing transitions (repeats and escalations excluded). */
  firings: number;
  resolved: number;
  byRule: { rule: string; firings: number }[];
  firingNow: { rule: string; since: number }[];
}

/** The traffic part, from the `{route="*"}` HTTP series of the metrics history. */
export interface ReportTraffic {
  /** Σ sampled rate × sampling interval: requests over the period, approximately. */
  requests: number;
  /** 5xx responses, the same way. */
  errors: number;
  /** Mean of `http.error_ratio` (intervals with requests only); undefined without requests. */
  errorRatio: number | undefined;
  latencyP99MaxMs: number | undefined;
  latencyP99MeanMs: number | undefined;
  /** Resolution of the points read, s. */
  resolutionS: number | undefined;
}

/** Share of the period with history samples: an approximation of the service being up. */
export interface ReportUptime {
  ratio: number;
  /** Sampling intervals covered. */
  samples: number;
  intervalMs: number;
}

/** The figures of a report; a part is absent when its source is. */
export interface ReportData {
  service: string;
  errors?: ReportErrors;
  alerts: ReportAlerts;
  traffic?: ReportTraffic;
  uptime?: ReportUptime;
}

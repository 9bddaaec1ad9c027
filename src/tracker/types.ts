/** An error group's state: `open` until resolved or ignored; a resolved group that recurs re-opens. */
export type ErrorState = 'open' | 'resolved' | 'ignored';

/** Where an error happened. */
export type ErrorSource = 'server' | 'browser';

/** What is kept of the request an error happened in (never headers, bodies or query strings). */
export interface RequestContext {
  method?: string;
  /** The route template, e.g. `/users/:id`. */
  route?: string;
  status?: number;
  requestId?: string;
}

/** Who met the error, as the app identifies them (secret-named fields are redacted). */
export interface UserContext {
  id?: string;
  username?: string;
  [key: string]: unknown;
}

/** Context of one captured error. */
export interface CaptureContext {
  request?: RequestContext;
  user?: UserContext;
  tags?: Record<string, string>;
  level?: 'fatal' | 'error' | 'warning';
  /** False for errors that reached no handler (process-level). Default true. */
  handled?: boolean;
}

/** A browser error report, as posted to `/errors/browser`. */
export interface BrowserReport {
  message: string;
  type?: string;
  stack?: string;
  /** The page's URL (its query string is dropped). */
  url?: string;
  release?: string;
  user?: UserContext;
}

/** A group of errors with one fingerprint. */
export interface ErrorGroup {
  fingerprint: string;
  type: string;
  /** The message template. */
  message: string;
  culprit: string;
  source: ErrorSource;
  state: ErrorState;
  count: number;
  firstSeen: number;
  lastSeen: number;
  firstRelease: string;
  lastRelease: string;
  resolvedAt: number | undefined;
  /** Times the group came back after being resolved. */
  regressions: number;
}

/** One stored occurrence of a group. */
export interface ErrorSample {
  id: number;
  at: number;
  release: string;
  type: string;
  /** The message as it was (not the template). */
  message: string;
  stack: string | undefined;
  level: 'fatal' | 'error' | 'warning';
  handled: boolean;
  source: ErrorSource;
  request?: RequestContext;
  user?: UserContext;
  tags?: Record<string, string>;
  /** Browser reports: the page (without query). */
  url?: string;
}

/** What {@link ErrorTracker.capture} did. */
export interface CaptureResult {
  fingerprint: string;
  /** Whether this occurrence was sampled: stored as a sample and forwarded to Sentry. */
  sampled: boolean;
}

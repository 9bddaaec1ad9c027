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

/**
 * Something that happened before an error (a request made, a log line, a click in a browser), as
 * the app records it: the trail shown with a sample. Secret-named `data` fields are redacted.
 */
export interface Breadcrumb {
  /** ms since the epoch. */
  at: number;
  /** What kind of thing happened, e.g. `http`, `db`, `ui.click`, `log`. */
  category: string;
  message: string;
  level?: 'debug' | 'info' | 'warning' | 'error';
  data?: Record<string, string | number | boolean>;
}

/** Context of one captured error. */
export interface CaptureContext {
  request?: RequestContext;
  /** Who met it; `id` (else `username`) also counts the group's users affected. */
  user?: UserContext;
  tags?: Record<string, string>;
  /** What happened before it, oldest first (the newest 30 are kept, each message 500 characters). */
  breadcrumbs?: Breadcrumb[];
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
  breadcrumbs?: Breadcrumb[];
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
  /**
   * Distinct users affected (by `user.id`, else `user.username`), estimated with a HyperLogLog
   * sketch: exact for a few, within ~3 % beyond; 0 when no occurrence named a user.
   */
  users: number;
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
  breadcrumbs?: Breadcrumb[];
  /** Browser reports: the page (without query). */
  url?: string;
}

/** What {@link ErrorTracker.capture} did. */
export interface CaptureResult {
  fingerprint: string;
  /** Whether this occurrence was sampled: stored as a sample and forwarded to Sentry. */
  sampled: boolean;
}

import type { IncomingHttpHeaders } from 'node:http';
import type { BreakerOptions, BreakerState } from './breaker.js';
import type { RetryBudgetOptions } from './budget.js';
import type { AdaptiveThrottleOptions } from './throttle.js';

/** Retries of an upstream's idempotent calls. Times in ms. */
export interface RetryOptions extends RetryBudgetOptions {
  /** Retries of one call at most (default 2: three attempts). 0 turns retries off. */
  maxRetries?: number;
  /** First backoff (default 50); each retry doubles the ceiling, the delay is drawn at random below it. */
  baseDelayMs?: number;
  /** Ceiling of the backoff (default 1 000). */
  maxDelayMs?: number;
}

/** One upstream: where it is (for `bulwark.http`) and how calls to it are guarded. */
export interface UpstreamOptions {
  /** `http(s)://host[:port]` (no path): needed for `bulwark.http.request()`, not for `protect()`. */
  origin?: string;
  /** Deadline of one call in ms, retries and backoff included (default 2 000); a call may set its own. */
  deadlineMs?: number;
  /** Connections undici keeps open to the origin (default 16). */
  connections?: number;
  retry?: RetryOptions;
  breaker?: BreakerOptions;
  /** Client-side adaptive throttling; `false` turns it off. */
  throttle?: AdaptiveThrottleOptions | false;
}

/** The `outbound` option of `createBulwark()`. */
export interface OutboundOptions {
  /**
   * Upstreams by name (`[a-z0-9][a-z0-9_-]*`, at most 63 characters): each gets the tool flag
   * `bulwark.outbound.<name>` (its kill switch) and the health check `outbound:<name>`.
   */
  upstreams?: Record<string, UpstreamOptions>;
  /**
   * Options of the names `protect()` is called with that are not listed in `upstreams` (they get a
   * breaker, a throttle and a deadline, but no kill switch and no health check). Default: the defaults.
   */
  defaults?: Omit<UpstreamOptions, 'origin'>;
}

/** One request of `bulwark.http.request()`. */
export interface OutboundRequest {
  method?: string;
  /** Path and query, starting with `/` (default `/`). */
  path?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** This call's deadline in ms (default the upstream's `deadlineMs`). */
  deadlineMs?: number;
  /**
   * Whether the request may be sent twice; default: true for GET, HEAD, OPTIONS, PUT and DELETE.
   * Only idempotent calls are retried.
   */
  idempotent?: boolean;
  /**
   * Answers instead of an outbound error (`BWK_ERR_OUTBOUND_*`: killed, open, throttled, deadline,
   * failed), given that error. Without it the error is thrown.
   */
  fallback?: (error: Error) => OutboundResponse | Promise<OutboundResponse>;
}

/** An upstream's answer (2xx–4xx; a 5xx is a failure and throws `BWK_ERR_OUTBOUND_FAILED`). */
export interface OutboundResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The whole body, read within the deadline. */
  body: Buffer;
  /** The body as UTF-8 text. */
  text(): string;
  /** The body parsed as JSON. */
  json<T = unknown>(): T;
}

/** Options of one `protect()` call. */
export interface ProtectOptions<T> {
  /** This call's deadline in ms (default the name's `deadlineMs`). */
  deadlineMs?: number;
  /** Retry the function when it fails (default false: it may not be safe to run twice). */
  idempotent?: boolean;
  /** Answers instead of an outbound error, given that error (see {@link OutboundRequest.fallback}). */
  fallback?: (error: Error) => T | Promise<T>;
}

/** How a call ended, as `bulwark_outbound_requests_total{outcome}` counts it. */
export type CallOutcome = 'success' | 'failure' | 'deadline' | 'open' | 'throttled' | 'killed';

/** One upstream as the admin API shows it. */
export interface UpstreamView {
  name: string;
  /** null for a name used only with `protect()`. */
  origin: string | null;
  breaker: BreakerState;
  /** Its kill switch is on (the flag `bulwark.outbound.<name>` is off). */
  killed: boolean;
  /** Calls since start, by outcome. */
  calls: Record<CallOutcome, number>;
  retries: number;
  /** The adaptive throttle now: requests and accepts over its window, and the rejection probability. */
  throttle: { requests: number; accepts: number; rejectProbability: number } | null;
  /** Retries the budget holds now. */
  retryBudget: number;
  lastFailure: { at: number; code: string; message: string } | null;
}

/** `bulwark.http`: HTTP calls to the configured upstreams, guarded. */
export interface OutboundHttp {
  /**
   * Sends `request` to `upstream`'s origin through its kill switch, adaptive throttle, breaker and
   * deadline, retrying idempotent requests within the retry budget. Resolves with the answer
   * (2xx–4xx); rejects with `BWK_ERR_OUTBOUND_KILLED`, `_THROTTLED`, `_OPEN` (503), `_DEADLINE`
   * (504) or `_FAILED` (502: a 5xx or a connection error, with the cause) unless `fallback` answers;
   * `BWK_ERR_OUTBOUND_UNKNOWN_UPSTREAM` for a name without an origin.
   */
  request(upstream: string, request?: OutboundRequest): Promise<OutboundResponse>;
  /** Every upstream (configured or used with `protect()`), as the admin API shows it. */
  upstreams(): UpstreamView[];
}

/**
 * `bulwark.protect(name, fn, options)`: runs `fn` (a database query, an SDK call) through `name`'s
 * kill switch, adaptive throttle, breaker and deadline. `fn` receives an AbortSignal that aborts at
 * the deadline; the call rejects then whether or not `fn` heeds it. Any rejection of `fn` counts as
 * a failure of `name`; it is thrown as `BWK_ERR_OUTBOUND_FAILED` with it as the cause.
 */
export type Protect = <T>(
  name: string,
  fn: (signal: AbortSignal) => Promise<T>,
  options?: ProtectOptions<T>,
) => Promise<T>;

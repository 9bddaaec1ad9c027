import type { Severity } from './rules.js';

/** One alert transition to tell one receiver about. */
export interface Notification {
  /** Idempotency key of this transition for this receiver: `<rule>:<transition>:<receiver>`. */
  key: string;
  rule: string;
  status: 'firing' | 'resolved';
  severity: Severity;
  summary: string;
  labels: Record<string, string>;
  value?: number;
  /** When the alert started firing, ms since the epoch. */
  startsAt: number;
  /** When the alert resolved, ms since the epoch; set on `resolved` notifications. */
  endsAt?: number;
  /** The service id. */
  service: string;
  instance?: string;
  /** Optional link to the admin console/API about this alert. */
  url?: string;
  /**
   * Optional multi-line plain text shown with the notification (a scheduled report's body): webhook
   * JSON as is, Slack attachment text, PagerDuty `custom_details.details`, Alertmanager
   * `annotations.description`, email text and HTML bodies.
   */
  details?: string;
}

/** A generic JSON webhook: the body is the {@link Notification} plus `version: 1`. */
export interface WebhookReceiver {
  name: string;
  type: 'webhook';
  url: string;
  /** Extra request headers (e.g. `authorization`); they never override the headers Bulwark sets. */
  headers?: Record<string, string>;
}

/** A Slack incoming webhook (or a compatible one: Mattermost, Rocket.Chat). */
export interface SlackReceiver {
  name: string;
  type: 'slack';
  url: string;
}

/** PagerDuty Events API v2. */
export interface PagerDutyReceiver {
  name: string;
  type: 'pagerduty';
  routingKey: string;
  /** Default `https://events.pagerduty.com/v2/enqueue`. */
  url?: string;
}

/** Anything that reads the Prometheus Alertmanager webhook format (version "4"). */
export interface AlertmanagerReceiver {
  name: string;
  type: 'alertmanager';
  url: string;
}

/** SMTP options of an {@link EmailReceiver}. */
export interface SmtpOptions {
  host: string;
  port: number;
  /** TLS from the first byte (port 465); otherwise STARTTLS is used when the server offers it. */
  secure?: boolean;
  auth?: { user: string; pass: string };
}

/** An email sent over SMTP to every address of `to`. */
export interface EmailReceiver {
  name: string;
  type: 'email';
  smtp: SmtpOptions;
  from: string;
  to: string[];
}

/** Where notifications go; `name` is unique among the configured receivers. */
export type Receiver =
  WebhookReceiver | SlackReceiver | PagerDutyReceiver | AlertmanagerReceiver | EmailReceiver;

/** The receivers reached over HTTP with a JSON body. */
export type HttpReceiver = Exclude<Receiver, { type: 'email' }>;

/** Options of one delivery. */
export interface DeliverOptions {
  /** Deadline of the whole delivery in ms, connecting included (default 5000). */
  timeoutMs?: number;
}

/** Default {@link DeliverOptions.timeoutMs}. */
export const DEFAULT_DELIVERY_TIMEOUT_MS = 5000;

/**
 * Why a delivery failed. The message names the receiver and the reason (HTTP status and a short body
 * excerpt, timeout, connection or SMTP error) and never contains a secret: no routing key, password,
 * URL path or query string.
 */
export interface DeliveryError extends Error {
  name: 'DeliveryError';
  /** The receiver's name. */
  receiver: string;
  /** False when retrying cannot help (a 4xx other than 408/425/429, a permanent SMTP reply, bad config). */
  retryable: boolean;
  /** HTTP status or SMTP reply code, when the other side answered. */
  status?: number;
  /** The receiver's `Retry-After`, in ms, when it sent one. */
  retryAfterMs?: number;
}

/** What a failure adds to its message. */
export interface DeliveryFailure {
  retryable: boolean;
  status?: number;
  retryAfterMs?: number;
  cause?: unknown;
}

/** Creates a {@link DeliveryError}; `target` says where (never with a secret), `reason` what happened. */
export function deliveryError(
  receiver: Receiver,
  target: string,
  reason: string,
  failure: DeliveryFailure,
): DeliveryError {
  const error = new Error(
    `Alert receiver "${receiver.name}" (${receiver.type}, ${target}): ${reason}`,
    failure.cause === undefined ? undefined : { cause: failure.cause },
  );
  return Object.assign(error, {
    name: 'DeliveryError' as const,
    receiver: receiver.name,
    retryable: failure.retryable,
    ...(failure.status === undefined ? {} : { status: failure.status }),
    ...(failure.retryAfterMs === undefined ? {} : { retryAfterMs: failure.retryAfterMs }),
  });
}

/**
 * True unless `error` says retrying cannot help (`retryable: false`): an unknown error is worth a
 * retry with backoff.
 */
export function isRetryableDelivery(error: unknown): boolean {
  return !(
    typeof error === 'object' &&
    error !== null &&
    (error as { retryable?: unknown }).retryable === false
  );
}

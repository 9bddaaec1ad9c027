/**
 * Alert notification delivery: one call per (notification, receiver) that resolves once the receiver
 * accepted it or rejects with a {@link DeliveryError} saying why. Retrying is the caller's job (the
 * outbox, with backoff); every HTTP delivery carries `idempotency-key: <n.key>` and every email
 * `X-Bulwark-Key` and a Message-ID derived from it, so a retried delivery can be recognised.
 * Nothing here logs; error messages never contain secrets.
 */
import { postNotification } from './notifier-http.js';
import {
  DEFAULT_DELIVERY_TIMEOUT_MS,
  type DeliverOptions,
  type Notification,
  type Receiver,
} from './notifier-types.js';

export type {
  AlertmanagerReceiver,
  DeliverOptions,
  DeliveryError,
  EmailReceiver,
  HttpReceiver,
  Notification,
  PagerDutyReceiver,
  Receiver,
  SlackReceiver,
  SmtpOptions,
  WebhookReceiver,
} from './notifier-types.js';
export { DEFAULT_DELIVERY_TIMEOUT_MS, isRetryableDelivery } from './notifier-types.js';
export { PAGERDUTY_EVENTS_URL, USER_AGENT, receiverUrl } from './notifier-http.js';
export {
  labelsFingerprint,
  notificationTitle,
  pagerDutyDedupKey,
  receiverPayload,
} from './notifier-payloads.js';
import type * as EmailNotifier from './notifier-email.js';
export { validateReceiver } from './notifier-validate.js';

/**
 * Delivers `n` to `receiver` within `opts.timeoutMs` (default 5000 ms). Resolves when it was
 * accepted (HTTP 2xx, SMTP 250). Rejects with a {@link DeliveryError} whose message names the
 * receiver and the reason, with `retryable: false` when a retry cannot help (HTTP 4xx other than
 * 408/425/429, SMTP 5xx, bad config) and `retryable: true` otherwise (5xx, 429, timeout, connection
 * refused, SMTP server down).
 */
export async function deliver(receiver: Receiver, n: Notification, opts: DeliverOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_DELIVERY_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be > 0, got ${timeoutMs}`);
  if (receiver.type === 'email') {
    // Loaded on the first email: nodemailer is a large module graph most services never need.
    email ??= import('./notifier-email.js');
    return (await email).sendEmail(receiver, n, timeoutMs);
  }
  return postNotification(receiver, n, timeoutMs);
}

/** Closes the cached SMTP transports and their connections (on shutdown, e.g. in `onClose`). */
export function closeNotifiers(): void {
  // Nothing to close before the first email loaded the module (a rejected load has nothing open).
  void email?.then(
    (module) => module.closeEmailTransports(),
    () => undefined,
  );
}

let email: Promise<typeof EmailNotifier> | undefined;

import { createHash } from 'node:crypto';
import { createTransport, type Transporter } from 'nodemailer';
import { formatLabels, notificationFacts, notificationTitle } from './notifier-payloads.js';
import { deliveryError, type EmailReceiver, type Notification } from './notifier-types.js';

/** nodemailer codes that say the configuration or the envelope is wrong: a retry sends the same. */
const PERMANENT_CODES = new Set(['ECONFIG', 'ENOAUTH', 'EENVELOPE', 'EMAXRECIPIENTS', 'EREQUIRETLS']);

interface CachedTransport {
  /** The config the transport was made from; another config under the same name replaces it. */
  config: string;
  transport: Transporter;
}

/** One pooled transport per receiver name, so a burst of alerts reuses one SMTP connection. */
const transports = new Map<string, CachedTransport>();

function transportFor(receiver: EmailReceiver, timeoutMs: number): Transporter {
  const { host, port, secure, auth } = receiver.smtp;
  const config = JSON.stringify([host, port, secure ?? false, auth?.user, auth?.pass, timeoutMs]);
  const cached = transports.get(receiver.name);
  if (cached?.config === config) return cached.transport;
  cached?.transport.close();
  const transport = createTransport({
    pool: true,
    maxConnections: 2,
    host,
    port,
    secure: secure ?? false,
    ...(auth === undefined ? {} : { auth: { user: auth.user, pass: auth.pass } }),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    dnsTimeout: timeoutMs,
    // nodemailer logs nothing unless asked; the caller logs the rejection.
    logger: false,
  });
  transports.set(receiver.name, { config, transport });
  return transport;
}

/** Closes every cached SMTP transport (their pooled connections); the next email opens a new one. */
export function closeEmailTransports(): void {
  for (const { transport } of transports.values()) transport.close();
  transports.clear();
}

/** `<sha256(key)@domain of from>`: the same key always yields the same Message-ID. */
export function emailMessageId(n: Notification, from: string): string {
  const domain = /@([^\s@<>]+)>?\s*$/.exec(from)?.[1] ?? 'bulwark.invalid';
  return `<${createHash('sha256').update(n.key).digest('hex').slice(0, 32)}@${domain}>`;
}

function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** The plain-text and HTML bodies: summary, details (preformatted in HTML), facts, labels, link. */
export function emailBodies(n: Notification): { text: string; html: string } {
  const facts = notificationFacts(n);
  const labels = Object.keys(n.labels).sort();
  const text = [
    notificationTitle(n),
    '',
    ...(n.details === undefined ? [] : [n.details, '']),
    ...facts.map(([label, value]) => `${label}: ${value}`),
    ...(labels.length === 0 ? [] : ['', 'Labels:', ...labels.map((k) => `  ${k}=${n.labels[k]}`)]),
    ...(n.url === undefined ? [] : ['', `Details: ${n.url}`]),
    '',
    `Key: ${n.key}`,
  ].join('\n');
  const row = (label: string, value: string): string =>
    `<tr><th align="left">${escapeHtml(label)}</th><td>${escapeHtml(value)}</td></tr>`;
  const html = [
    `<h2>${escapeHtml(notificationTitle(n))}</h2>`,
    ...(n.details === undefined ? [] : [`<pre>${escapeHtml(n.details)}</pre>`]),
    '<table cellpadding="4">',
    ...facts.map(([label, value]) => row(label, value)),
    ...(labels.length === 0 ? [] : [row('Labels', formatLabels(n.labels))]),
    '</table>',
    ...(n.url === undefined ? [] : [`<p><a href="${escapeHtml(n.url)}">Details</a></p>`]),
  ].join('\n');
  return { text, html };
}

/** nodemailer's error fields this module reads. */
interface SmtpFailure {
  code?: unknown;
  responseCode?: unknown;
  name?: unknown;
  message?: unknown;
}

/**
 * Sends the notification by email through the receiver's cached pooled transport, within
 * `timeoutMs` (connection, greeting, each socket read, and the whole send). Rejects with a
 * {@link DeliveryError}: retryable on timeouts, connection errors and 4xx SMTP replies; not retryable
 * on a 5xx SMTP reply (e.g. 535 bad credentials, 550 unknown mailbox) or a bad config.
 */
export async function sendEmail(receiver: EmailReceiver, n: Notification, timeoutMs: number): Promise<void> {
  const target = `smtp ${receiver.smtp.host}:${receiver.smtp.port}`;
  const { text, html } = emailBodies(n);
  try {
    await transportFor(receiver, timeoutMs).sendMail({
      from: receiver.from,
      to: receiver.to,
      subject: notificationTitle(n),
      text,
      html,
      messageId: emailMessageId(n, receiver.from),
      headers: { 'X-Bulwark-Key': n.key },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const failure = (typeof error === 'object' && error !== null ? error : {}) as SmtpFailure;
    const code = typeof failure.code === 'string' ? failure.code : undefined;
    const status = typeof failure.responseCode === 'number' ? failure.responseCode : undefined;
    const timedOut = code === 'EABORT' || code === 'ETIMEDOUT';
    const message = typeof failure.message === 'string' ? failure.message : String(error);
    const reason = timedOut
      ? `no answer within ${timeoutMs} ms (${message})`
      : `SMTP error${code === undefined ? '' : ` ${code}`}: ${message}`;
    const permanent =
      (status !== undefined && status >= 500) || (code !== undefined && PERMANENT_CODES.has(code));
    throw deliveryError(receiver, target, reason, {
      retryable: !permanent,
      ...(status === undefined ? {} : { status }),
      cause: error,
    });
  }
}

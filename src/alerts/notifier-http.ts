import { receiverPayload } from './notifier-payloads.js';
import { deliveryError, type DeliveryError, type HttpReceiver, type Notification } from './notifier-types.js';

/** PagerDuty Events API v2 endpoint used when a `pagerduty` receiver names no `url`. */
export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';

/** Sent as `user-agent` on every HTTP delivery. */
export const USER_AGENT = 'bulwark-alerts';

/** How much of an error body is read, and how much of it goes into the error message. */
const BODY_READ_BYTES = 2048;
const BODY_EXCERPT_CHARS = 200;

/** Statuses worth a retry besides 5xx: request timeout, too early, too many requests. */
const RETRYABLE_4XX = new Set([408, 425, 429]);

/** The URL a receiver is posted to. */
export function receiverUrl(receiver: HttpReceiver): string {
  return receiver.type === 'pagerduty' ? (receiver.url ?? PAGERDUTY_EVENTS_URL) : receiver.url;
}

/** Strings of a receiver's config that must not reach an error message, even echoed by the receiver. */
function secretsOf(receiver: HttpReceiver, url: URL): string[] {
  const secrets = [url.pathname, url.search, url.username, url.password];
  if (receiver.type === 'pagerduty') secrets.push(receiver.routingKey);
  if (receiver.type === 'webhook') secrets.push(...Object.values(receiver.headers ?? {}));
  // Short strings (`/`, `?a`) are not worth hiding and would mangle ordinary words.
  return secrets.filter((s) => s.length >= 8);
}

function redact(text: string, secrets: readonly string[]): string {
  return secrets.reduce((out, secret) => out.split(secret).join('***'), text);
}

/** Up to {@link BODY_READ_BYTES} of the body as one line; the rest is discarded unread. */
async function readExcerpt(response: Response): Promise<string> {
  const reader: ReadableStreamDefaultReader<Uint8Array> | undefined = response.body?.getReader();
  if (reader === undefined) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < BODY_READ_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const text = Buffer.concat(chunks)
    .subarray(0, BODY_READ_BYTES)
    .toString('utf8')
    .replace(/\s+/g, ' ')
    .trim();
  return text.length > BODY_EXCERPT_CHARS ? `${text.slice(0, BODY_EXCERPT_CHARS)}…` : text;
}

/** `Retry-After` (seconds or an HTTP date) in ms, undefined when absent or unreadable. */
function retryAfterMs(response: Response): number | undefined {
  const header = response.headers.get('retry-after')?.trim();
  if (header === undefined || header === '') return undefined;
  if (/^\d+$/.test(header)) return Number(header) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Why fetch rejected, in words: timeout, connection error (with its code), or the message. */
function describeFetchFailure(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && error.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  if (error instanceof Error && error.name === 'AbortError') return 'the request was aborted';
  // undici reports network failures as TypeError('fetch failed') with the socket error as cause.
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    const inner = cause instanceof AggregateError ? (cause.errors[0] as unknown) : undefined;
    const message = cause.message || (inner instanceof Error ? inner.message : '') || cause.name;
    return `connection failed: ${typeof code === 'string' && !message.includes(code) ? `${code} ` : ''}${message}`;
  }
  return `connection failed: ${String(cause)}`;
}

function parseUrl(receiver: HttpReceiver): URL | DeliveryError {
  let url: URL;
  try {
    url = new URL(receiverUrl(receiver));
  } catch {
    // The parse error quotes the URL, which may hold a token: not attached as cause.
    return deliveryError(receiver, 'invalid URL', 'the URL does not parse', { retryable: false });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return deliveryError(receiver, url.protocol, 'only http: and https: URLs are supported', {
      retryable: false,
    });
  }
  return url;
}

function requestHeaders(receiver: HttpReceiver, n: Notification, target: string): Headers | DeliveryError {
  let headers: Headers;
  try {
    headers = new Headers(receiver.type === 'webhook' ? receiver.headers : undefined);
  } catch {
    // The Headers error quotes the value, which may be a credential: not attached as cause.
    return deliveryError(receiver, target, 'a configured header is not a valid HTTP header', {
      retryable: false,
    });
  }
  headers.set('content-type', 'application/json');
  headers.set('idempotency-key', n.key);
  headers.set('user-agent', USER_AGENT);
  return headers;
}

/**
 * POSTs {@link receiverPayload} as JSON to the receiver with `idempotency-key: n.key`, within
 * `timeoutMs` (connecting, sending and the response status). Resolves on a 2xx. Rejects with a
 * {@link DeliveryError}: retryable on a timeout, a connection error, 408/425/429 and 5xx; not
 * retryable on any other 4xx, a 3xx (redirects are not followed) or an unusable URL. Error messages
 * show the URL's origin only, never its path, query or credentials.
 */
export async function postNotification(
  receiver: HttpReceiver,
  n: Notification,
  timeoutMs: number,
): Promise<void> {
  const url = parseUrl(receiver);
  if (url instanceof Error) throw url;
  const target = url.origin;
  const headers = requestHeaders(receiver, n, target);
  if (headers instanceof Error) throw headers;
  const signal = AbortSignal.timeout(timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers,
      body: JSON.stringify(receiverPayload(receiver, n)),
      redirect: 'manual',
      signal,
    });
  } catch (error) {
    throw deliveryError(receiver, target, describeFetchFailure(error, timeoutMs), {
      retryable: true,
      cause: error,
    });
  }
  // The status is the answer; the body is read only to free the connection or to explain a failure.
  const excerpt = await readExcerpt(response).catch(() => '');
  const { status } = response;
  if (status >= 200 && status < 300) return;
  const retryable = status >= 500 || RETRYABLE_4XX.has(status);
  const body = redact(excerpt, secretsOf(receiver, url));
  const statusLine = `HTTP ${status}${response.statusText ? ` ${response.statusText}` : ''}`;
  const reason =
    status >= 300 && status < 400
      ? `${statusLine} (redirects are not followed: configure the final URL)`
      : `${statusLine}${body === '' ? ' (empty body)' : `: ${body}`}`;
  const after = retryAfterMs(response);
  throw deliveryError(receiver, target, reason, {
    retryable,
    status,
    ...(after === undefined ? {} : { retryAfterMs: after }),
  });
}

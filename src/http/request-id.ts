import { randomUUID } from 'node:crypto';

/** The longest client request id kept; longer values are cut. */
export const CLIENT_REQUEST_ID_MAX = 128;

/**
 * Every request's id: a random UUID, chosen by the server and never by the client (a client that
 * picked its own could make unrelated requests, and their audit rows, share one id). Random rather
 * than a counter, which would tell clients how much traffic the process serves.
 */
export function generateRequestId(): string {
  return randomUUID();
}

/**
 * The client's `x-request-id`, kept for correlation (`request.clientRequestId`, logged as
 * `clientRequestId`): cut to {@link CLIENT_REQUEST_ID_MAX} characters, every character outside
 * letters, digits and `_ . : - / + = @ ; ,` replaced with `_`. Undefined when absent or empty.
 */
export function clientRequestId(given: string | string[] | undefined): string | undefined {
  if (typeof given !== 'string' || given === '') return undefined;
  return given.slice(0, CLIENT_REQUEST_ID_MAX).replace(/[^\w.:/+=@;,-]/g, '_');
}

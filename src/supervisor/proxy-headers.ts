// Header rewriting between the client and an upstream: hop-by-hop headers dropped, `x-forwarded-*`
// set. Headers stay flat `[name, value, …]` arrays, as `rawHeaders`, so no header object is built.
import type http from 'node:http';

/** A request's headers as forwarded, and how its body is framed. */
export interface RequestHead {
  /** Flat `[name, value, …]`, as `rawHeaders`: case and order kept, no header object built. */
  headers: string[];
  /** -1 when absent. */
  contentLength: number;
  /** A `Transfer-Encoding` body (stripped: the length is set once the body is buffered). */
  chunked: boolean;
}

/**
 * Request headers for the upstream: hop-by-hop ones dropped (except `connection`/`upgrade` on an
 * upgrade), `expect` dropped (Node already answered 100-continue), `x-forwarded-for` appended to,
 * `x-forwarded-proto`/`-host` set.
 */
export function forwardHeaders(
  req: http.IncomingMessage,
  upgrade: boolean,
  trustForwarded: boolean,
): RequestHead {
  const raw = req.rawHeaders;
  const headers: string[] = [];
  let forwardedFor = '';
  let proto: string | undefined;
  let forwardedHost: string | undefined;
  let host: string | undefined;
  let contentLength = -1;
  let chunked = false;
  let listed: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    switch (lower) {
      case 'connection':
        if (upgrade) headers.push(name, value);
        else listed = connectionTokens(value, listed);
        break;
      case 'upgrade':
        if (upgrade) headers.push(name, value);
        break;
      case 'keep-alive':
      case 'te':
      case 'trailer':
      case 'expect':
        break;
      case 'transfer-encoding':
        chunked = true;
        break;
      case 'content-length':
        contentLength = Number(value);
        headers.push(name, value);
        break;
      case 'host':
        host = value;
        headers.push(name, value);
        break;
      case 'x-forwarded-for':
        forwardedFor = forwardedFor === '' ? value : `${forwardedFor}, ${value}`;
        break;
      case 'x-forwarded-proto':
        if (trustForwarded) proto = value;
        break;
      case 'x-forwarded-host':
        if (trustForwarded) forwardedHost = value;
        break;
      default:
        if (!lower.startsWith('proxy-')) headers.push(name, value);
    }
  }
  const remote = req.socket.remoteAddress;
  if (remote !== undefined) forwardedFor = forwardedFor === '' ? remote : `${forwardedFor}, ${remote}`;
  if (forwardedFor !== '') headers.push('x-forwarded-for', forwardedFor);
  headers.push('x-forwarded-proto', proto ?? 'http');
  forwardedHost ??= host;
  if (forwardedHost !== undefined) headers.push('x-forwarded-host', forwardedHost);
  return { headers: listed === undefined ? headers : without(headers, listed), contentLength, chunked };
}

/** Response headers for the client: hop-by-hop ones dropped; Node sets its own framing. */
export function responseHeaders(raw: string[]): string[] {
  const headers: string[] = [];
  let listed: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    switch (lower) {
      case 'connection':
        listed = connectionTokens(raw[i + 1] as string, listed);
        break;
      case 'keep-alive':
      case 'te':
      case 'trailer':
      case 'transfer-encoding':
      case 'upgrade':
        break;
      default:
        if (!lower.startsWith('proxy-')) headers.push(name, raw[i + 1] as string);
    }
  }
  return listed === undefined ? headers : without(headers, listed);
}

/** Header names a `Connection` value declares hop-by-hop, beyond the usual ones. */
function connectionTokens(value: string, listed: string[] | undefined): string[] | undefined {
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || name === 'keep-alive' || name === 'close' || name === 'upgrade') continue;
    (listed ??= []).push(name);
  }
  return listed;
}

function without(headers: string[], names: string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (!names.includes(name.toLowerCase())) kept.push(name, headers[i + 1] as string);
  }
  return kept;
}

/** The request line and headers to write first on an upgrade tunnel, ending with the blank line. */
export function upgradeHead(req: http.IncomingMessage, trustForwarded: boolean): string {
  const { headers } = forwardHeaders(req, true, trustForwarded);
  let text = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2)
    text += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`;
  return `${text}\r\n`;
}

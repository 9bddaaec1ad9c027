// Header rewriting between the client and an upstream: hop-by-hop headers dropped, `x-forwarded-*`
// set. Headers stay flat `[name, value, …]` arrays, as `rawHeaders`, so no header object is built.
import type http from 'node:http';
import net from 'node:net';
import { bulwarkError } from '../errors/index.js';

/** Whether the proxy believes the forwarding headers of a peer (by its address). */
export type TrustedPeer = (address: string | undefined) => boolean;

/** The entries of `entries` that are neither an IP address nor a CIDR range (`10.0.0.0/8`, `fd00::/8`). */
export function invalidProxyEntries(entries: readonly string[]): string[] {
  return entries.filter((entry) => parseProxyEntry(entry) === undefined);
}

function parseProxyEntry(
  entry: string,
): { address: string; prefix: number | undefined; type: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', bits, extra] = entry.trim().split('/');
  const type = net.isIPv4(address) ? 'ipv4' : net.isIPv6(address) ? 'ipv6' : undefined;
  if (type === undefined || extra !== undefined) return undefined;
  if (bits === undefined) return { address, prefix: undefined, type };
  const prefix = /^\d{1,3}$/.test(bits) ? Number(bits) : Number.NaN;
  if (!(prefix >= 0 && prefix <= (type === 'ipv4' ? 32 : 128))) return undefined;
  return { address, prefix, type };
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) as `10.0.0.1`. */
function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/**
 * The matcher of the proxies in front whose forwarding headers are believed: IP addresses and CIDR
 * ranges, IPv4 or IPv6 (an IPv4-mapped IPv6 peer matches its IPv4 entry). Empty: no one's.
 *
 * @throws `BWK_ERR_SUPERVISOR_OPTIONS` naming an entry that is neither an address nor a range.
 */
export function trustedPeers(entries: readonly string[]): TrustedPeer {
  if (entries.length === 0) return () => false;
  const list = new net.BlockList();
  for (const entry of entries) {
    const parsed = parseProxyEntry(entry);
    if (parsed === undefined)
      throw bulwarkError('BWK_ERR_SUPERVISOR_OPTIONS', {
        summary: `trusted proxy "${entry}" is neither an IP address nor a CIDR range`,
      });
    if (parsed.prefix === undefined) list.addAddress(parsed.address, parsed.type);
    else list.addSubnet(parsed.address, parsed.prefix, parsed.type);
  }
  return (address) => {
    if (address === undefined) return false;
    const plain = plainAddress(address.trim());
    const type = net.isIPv4(plain) ? 'ipv4' : net.isIPv6(plain) ? 'ipv6' : undefined;
    return type !== undefined && list.check(plain, type);
  };
}

/**
 * The client's address: the peer, or, when the peer is a trusted proxy, the nearest address in its
 * `x-forwarded-for` chain that is not itself a trusted proxy (the leftmost if all of them are).
 */
function clientAddress(peer: string, forwardedFor: string, trusted: TrustedPeer): string {
  if (forwardedFor === '' || !trusted(peer)) return peer;
  const chain = forwardedFor.split(',');
  for (let i = chain.length - 1; i >= 0; i -= 1) {
    const address = (chain[i] as string).trim();
    // The trusted proxy wrote this entry itself: anything but an address is a broken header.
    if (i === 0 || !trusted(address)) return net.isIP(address) === 0 ? peer : plainAddress(address);
  }
  return peer;
}

/** The first value of a list header (`https, http` → `https`): the one the client-facing proxy set. */
function firstValue(value: string): string {
  const comma = value.indexOf(',');
  return (comma === -1 ? value : value.slice(0, comma)).trim();
}

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
 * upgrade), `expect` dropped (Node already answered 100-continue), and the forwarding headers
 * replaced, never appended to: a client could otherwise name any address it likes and get fresh
 * per-client rate limits. `x-forwarded-for` is set to one address, the client's (the peer's, or,
 * from a `trusted` proxy, the one its chain names); `x-forwarded-proto`/`-host` are the proxy's own
 * (`http`, the `host` header) unless a trusted proxy set them; `forwarded` and `x-real-ip` pass
 * only from a trusted proxy.
 */
export function forwardHeaders(
  req: http.IncomingMessage,
  upgrade: boolean,
  trusted: TrustedPeer,
): RequestHead {
  const raw = req.rawHeaders;
  const peer = req.socket.remoteAddress;
  const fromTrusted = trusted(peer);
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
        if (fromTrusted) forwardedFor = forwardedFor === '' ? value : `${forwardedFor}, ${value}`;
        break;
      case 'x-forwarded-proto':
        if (fromTrusted && proto === undefined && /^https?$/i.test(firstValue(value)))
          proto = firstValue(value).toLowerCase();
        break;
      case 'x-forwarded-host':
        if (fromTrusted && forwardedHost === undefined) forwardedHost = firstValue(value);
        break;
      case 'forwarded':
      case 'x-real-ip':
        if (fromTrusted) headers.push(name, value);
        break;
      default:
        if (!lower.startsWith('proxy-')) headers.push(name, value);
    }
  }
  if (peer !== undefined) headers.push('x-forwarded-for', clientAddress(peer, forwardedFor, trusted));
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
export function upgradeHead(req: http.IncomingMessage, trusted: TrustedPeer): string {
  const { headers } = forwardHeaders(req, true, trusted);
  let text = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2)
    text += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`;
  return `${text}\r\n`;
}

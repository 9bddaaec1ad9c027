import { bulwarkError } from '../errors/index.js';
import type { OutboundOptions, UpstreamOptions } from './types.js';

/** Names of upstreams: they appear in flag keys, health check names and metric labels. */
export const UPSTREAM_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Where a number of the options must lie, by its path under an upstream. */
const RANGES: [path: string, read: (u: UpstreamOptions) => unknown, min: number, max: number][] = [
  ['deadlineMs', (u) => u.deadlineMs, 1, 3_600_000],
  ['connections', (u) => u.connections, 1, 10_000],
  ['retry.maxRetries', (u) => u.retry?.maxRetries, 0, 10],
  ['retry.baseDelayMs', (u) => u.retry?.baseDelayMs, 0, 60_000],
  ['retry.maxDelayMs', (u) => u.retry?.maxDelayMs, 0, 600_000],
  ['retry.ratio', (u) => u.retry?.ratio, 0, 1],
  ['retry.windowMs', (u) => u.retry?.windowMs, 10, 3_600_000],
  ['retry.minRetries', (u) => u.retry?.minRetries, 0, 1_000_000],
  ['breaker.consecutiveFailures', (u) => u.breaker?.consecutiveFailures, 1, 1_000_000],
  ['breaker.failureRate', (u) => u.breaker?.failureRate, 0.001, 0.999],
  ['breaker.windowMs', (u) => u.breaker?.windowMs, 100, 3_600_000],
  ['breaker.minimumRps', (u) => u.breaker?.minimumRps, 0.001, 1_000_000],
  ['breaker.halfOpenAfterMs', (u) => u.breaker?.halfOpenAfterMs, 1, 3_600_000],
  ['throttle.k', (u) => (u.throttle === false ? undefined : u.throttle?.k), 1, 100],
  ['throttle.minRequests', (u) => (u.throttle === false ? undefined : u.throttle?.minRequests), 0, 1_000_000],
  ['throttle.windowMs', (u) => (u.throttle === false ? undefined : u.throttle?.windowMs), 100, 3_600_000],
];

function checkUpstream(field: string, upstream: UpstreamOptions, problems: string[]): void {
  for (const [path, read, min, max] of RANGES) {
    const value = read(upstream);
    if (value !== undefined && !(typeof value === 'number' && value >= min && value <= max))
      problems.push(`${field}.${path} must be a number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  if (upstream.origin === undefined) return;
  let url: URL | undefined;
  try {
    url = new URL(upstream.origin);
  } catch {
    url = undefined;
  }
  if (
    url === undefined ||
    !/^https?:$/.test(url.protocol) ||
    url.origin !== upstream.origin.replace(/\/$/, '')
  )
    problems.push(
      `${field}.origin must be http(s)://host[:port] with no path, got ${JSON.stringify(upstream.origin)}`,
    );
}

/**
 * `options` checked: upstream names, origins and every number's range.
 *
 * @throws BWK_ERR_OUTBOUND_OPTIONS naming every bad field.
 */
export function validateOutboundOptions(options: OutboundOptions): OutboundOptions {
  const problems: string[] = [];
  for (const [name, upstream] of Object.entries(options.upstreams ?? {})) {
    if (!UPSTREAM_NAME.test(name))
      problems.push(
        `outbound.upstreams: the name ${JSON.stringify(name)} must match ${UPSTREAM_NAME.source}`,
      );
    checkUpstream(`outbound.upstreams.${name}`, upstream, problems);
  }
  checkUpstream('outbound.defaults', options.defaults ?? {}, problems);
  if (problems.length > 0) throw bulwarkError('BWK_ERR_OUTBOUND_OPTIONS', { detail: problems.join('; ') });
  return options;
}

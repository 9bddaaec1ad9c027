import { isIPv6 } from 'node:net';

/**
 * The network a client address stands for, for per-client limits and tallies: an IPv4 address as it
 * is (an IPv4-mapped IPv6 address, `::ffff:192.0.2.1`, as its IPv4 form); an IPv6 address as its
 * /64 prefix in canonical form (`2001:db8:0:1::/64`), because one subscriber usually holds a whole
 * /64 and can pick any of its 2^64 addresses, so keying on the address would give them a fresh
 * budget per request. Anything else (a host name, an empty string) is returned unchanged.
 */
export function clientNetwork(ip: string): string {
  const address = ip.split('%')[0] ?? ip; // a zone index (fe80::1%eth0) names an interface, not a host
  if (!isIPv6(address)) return ip;
  const groups = expand(address.toLowerCase());
  if (groups.slice(0, 6).every((g, i) => (i === 5 ? g === 'ffff' : g === '0'))) {
    const [hi, lo] = [parseInt(groups[6] ?? '0', 16), parseInt(groups[7] ?? '0', 16)];
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return `${compress(groups.slice(0, 4))}::/64`;
}

/** The eight groups of an IPv6 address, each without leading zeros (an IPv4 tail becomes two). */
function expand(address: string): string[] {
  const [head = '', tail] = address.split('::');
  const split = (part: string | undefined): string[] =>
    part === undefined || part === '' ? [] : part.split(':').flatMap(ipv4Tail);
  const left = split(head);
  const right = split(tail);
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((g) => parseInt(g, 16).toString(16));
}

function ipv4Tail(group: string): string[] {
  if (!group.includes('.')) return [group];
  const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
  return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
}

/** The first four groups, with trailing zero groups left to the `::` that follows. */
function compress(groups: string[]): string {
  let end = groups.length;
  while (end > 0 && groups[end - 1] === '0') end -= 1;
  return groups.slice(0, end).join(':');
}

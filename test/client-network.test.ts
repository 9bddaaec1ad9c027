import { describe, expect, it } from 'vitest';
import { clientNetwork } from '../src/ratelimit/client-network.js';

describe('clientNetwork', () => {
  it('keeps IPv4 addresses, and unwraps IPv4-mapped IPv6 ones', () => {
    expect(clientNetwork('203.0.113.7')).toBe('203.0.113.7');
    expect(clientNetwork('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientNetwork('::FFFF:cb00:7107')).toBe('203.0.113.7');
  });

  it('reduces every IPv6 address of a /64 to one canonical prefix', () => {
    const prefix = '2001:db8:0:1::/64';
    for (const address of [
      '2001:db8:0:1::1',
      '2001:0DB8:0000:0001:ffff:ffff:ffff:ffff',
      '2001:db8::1:1:2:3:4',
      '2001:db8:0:1:0:0:0:9%eth0',
      '2001:db8:0:1::192.0.2.1',
    ])
      expect(clientNetwork(address), address).toBe(prefix);
    expect(clientNetwork('2001:db8:0:2::1')).toBe('2001:db8:0:2::/64');
    expect(clientNetwork('2001:db8::')).toBe('2001:db8::/64');
    expect(clientNetwork('::1')).toBe('::/64');
  });

  it('returns anything else unchanged', () => {
    for (const other of ['', 'localhost', 'not an address']) expect(clientNetwork(other)).toBe(other);
  });
});

// Who may use the test endpoints, as TestAccess decides it: keys compared as digests in constant
// time (timingSafeEqual with every configured digest, no early exit, whichever key is presented),
// the allow-list (addresses, CIDRs, IPv4-mapped IPv6), and the configuration's problems named by
// variable, never showing a key.
import * as crypto from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { TestAccess } from '../src/test-access.js';

vi.mock('node:crypto', async (original) => {
  const real = await original<typeof crypto>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});

const a = 'a-key-of-thirty-two-characters-1';
const b = 'b-key-of-thirty-two-characters-2';
const c = 'c-key-of-thirty-two-characters-3';
const access = TestAccess.fromEnv({ SPIN_TEST_API_KEYS: `one:${a},two:${b},three:${c}` });
const compare = vi.mocked(crypto.timingSafeEqual);

describe('TestAccess', () => {
  beforeEach(() => {
    compare.mockClear();
  });

  it('compares the digest of any key presented with every configured one, in constant time', () => {
    for (const [presented, expected] of [
      [a, { name: 'one' }],
      [c, { name: 'three' }],
      [`${a}x`, { refusal: 'wrong-key' }],
      [a.slice(0, -1), { refusal: 'wrong-key' }],
      ['x', { refusal: 'wrong-key' }],
    ] as const) {
      compare.mockClear();
      expect(access.decide('127.0.0.1', presented, true)).toEqual(expected);
      // The first key matching or none: the same three comparisons of 32-byte digests.
      expect(compare).toHaveBeenCalledTimes(3);
      for (const [x, y] of compare.mock.calls) expect([x.byteLength, y.byteLength]).toEqual([32, 32]);
    }
    expect(access.decide('127.0.0.1', undefined, true)).toEqual({ refusal: 'missing-key' });
    expect(access.decide('127.0.0.1', '', true)).toEqual({ refusal: 'missing-key' });
    expect(access.names).toEqual(['one', 'two', 'three']);
  });

  it('with no key: disabled in production, no-keys elsewhere, whatever is presented', () => {
    const none = TestAccess.fromEnv({});
    expect(none.decide('127.0.0.1', a, true)).toEqual({ refusal: 'disabled' });
    expect(none.decide('127.0.0.1', a, false)).toEqual({ refusal: 'no-keys' });
  });

  it('checks the address before the key: addresses, CIDRs, IPv6, IPv4-mapped IPv6', () => {
    const listed = TestAccess.fromEnv({
      SPIN_TEST_API_KEYS: `one:${a}`,
      SPIN_TEST_ALLOW_IPS: '10.1.0.0/16, 192.0.2.7, 2001:db8::/32',
    });
    for (const ip of ['10.1.200.3', '192.0.2.7', '::ffff:10.1.0.1', '2001:db8:5::1'])
      expect([ip, listed.decide(ip, a, true)]).toEqual([ip, { name: 'one' }]);
    for (const ip of ['10.2.0.1', '192.0.2.8', '::ffff:192.0.2.8', '2001:db9::1', '::1', 'not-an-ip']) {
      compare.mockClear();
      expect([ip, listed.decide(ip, a, true)]).toEqual([ip, { refusal: 'address' }]);
      expect(compare).not.toHaveBeenCalled();
    }
  });

  it('names every problem by its variable, a key by its name only', () => {
    const problems = (env: NodeJS.ProcessEnv) => {
      try {
        TestAccess.fromEnv(env);
      } catch (error) {
        expect(JSON.stringify(error) + String(error)).not.toContain('short-secret');
        return (error as { code: string; details: { field: string; message: string }[] }).details;
      }
      throw new Error('accepted');
    };
    expect(
      problems({
        SPIN_TEST_API_KEYS: `one:${a}, two:short-secret, ${b}, one:${c}, four:${a}`,
        SPIN_TEST_ALLOW_IPS: '10.0.0.0/33, 10.0.0.0/, 300.1.1.1, ::1/129, 10.0.0.0/8/8',
      }),
    ).toEqual([
      {
        field: 'SPIN_TEST_API_KEYS',
        message: expect.stringMatching(/^the key of "two" has 12 characters/) as string,
      },
      { field: 'SPIN_TEST_API_KEYS', message: expect.stringMatching(/^entry 3 must be name:key/) as string },
      { field: 'SPIN_TEST_API_KEYS', message: 'the name "one" is given twice' },
      { field: 'SPIN_TEST_API_KEYS', message: '"four" and "one" have the same key' },
      ...['10.0.0.0/33', '10.0.0.0/', '300.1.1.1', '::1/129', '10.0.0.0/8/8'].map((entry) => ({
        field: 'SPIN_TEST_ALLOW_IPS',
        message: expect.stringContaining(`"${entry}" is not an IP address or a CIDR`) as string,
      })),
    ]);
  });
});

// Who may use Spin's test endpoints (`/api/test/*`): the API keys of SPIN_TEST_API_KEYS and the
// optional address allow-list of SPIN_TEST_ALLOW_IPS, both read once at start. A key is kept only as
// its SHA-256 digest (the clear value is dropped after reading) and compared in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { bulwarkError, type FieldProblem } from 'bulwark';

/** `name:key` pairs, comma-separated. */
export const KEYS_VARIABLE = 'SPIN_TEST_API_KEYS';
/** Addresses and CIDRs (`10.0.0.0/8`, `::1`), comma-separated; unset: any address. */
export const ALLOW_VARIABLE = 'SPIN_TEST_ALLOW_IPS';
/** The shortest key accepted (a guessable key would make the endpoints open). */
export const MIN_KEY_LENGTH = 24;

/** Why a request to a test endpoint is refused. */
export type Refusal =
  /** The flag `spin.test-endpoints` is off. */
  | 'turned-off'
  /** No key is configured, in production. */
  | 'disabled'
  /** No key is configured, elsewhere. */
  | 'no-keys'
  /** The client's address is not on the allow-list. */
  | 'address'
  | 'missing-key'
  | 'wrong-key';

/** The outcome of the checks: the name of the key used, or why not. */
export type Decision = { name: string } | { refusal: Refusal };

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$/;

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * The keys and the allow-list of the test endpoints. Build it with {@link TestAccess.fromEnv}; it
 * holds names and digests, never a key.
 */
export class TestAccess {
  readonly #keys: readonly { name: string; digest: Buffer }[];
  readonly #allow: BlockList | undefined;

  private constructor(keys: readonly { name: string; digest: Buffer }[], allow: BlockList | undefined) {
    this.#keys = keys;
    this.#allow = allow;
  }

  /**
   * Reads SPIN_TEST_API_KEYS and SPIN_TEST_ALLOW_IPS from `env`.
   *
   * @throws BWK_ERR_SETTINGS_INVALID with one detail per problem, naming the variable (a key shorter
   *   than {@link MIN_KEY_LENGTH} characters, an entry that is not `name:key`, a name given twice,
   *   an address or CIDR that is not one). A message names a key by its name, never shows it.
   */
  static fromEnv(env: NodeJS.ProcessEnv): TestAccess {
    const problems: FieldProblem[] = [];
    const keys = readKeys(env[KEYS_VARIABLE] ?? '', problems);
    const allow = readAllowList(env[ALLOW_VARIABLE] ?? '', problems);
    if (problems.length > 0)
      throw bulwarkError(
        'BWK_ERR_SETTINGS_INVALID',
        { summary: problems.map((p) => `${p.field} ${p.message}`).join('; ') },
        { details: problems },
      );
    return new TestAccess(keys, allow);
  }

  /** The names of the keys configured (none: the endpoints refuse everything). */
  get names(): string[] {
    return this.#keys.map((key) => key.name);
  }

  /**
   * The checks in order: keys configured (else `disabled` in production, `no-keys` elsewhere), the
   * client's address allowed, a key presented, the key known. The key's digest is compared with
   * every configured one (no early exit), each with `timingSafeEqual`.
   */
  decide(ip: string, presented: string | undefined, production: boolean): Decision {
    if (this.#keys.length === 0) return { refusal: production ? 'disabled' : 'no-keys' };
    if (!this.allows(ip)) return { refusal: 'address' };
    if (presented === undefined || presented === '') return { refusal: 'missing-key' };
    const given = digest(presented);
    let found: string | undefined;
    for (const key of this.#keys) {
      const same = timingSafeEqual(given, key.digest);
      if (same && found === undefined) found = key.name;
    }
    return found === undefined ? { refusal: 'wrong-key' } : { name: found };
  }

  /** Whether `ip` is on the allow-list (always, without one); an IPv4-mapped IPv6 address counts as IPv4. */
  allows(ip: string): boolean {
    if (this.#allow === undefined) return true;
    const address = ip.split('%')[0] ?? ip;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
    if (mapped !== undefined && this.#allow.check(mapped, 'ipv4')) return true;
    const family = isIP(address);
    return family !== 0 && this.#allow.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }
}

function entries(raw: string): string[] {
  return raw
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

function readKeys(raw: string, problems: FieldProblem[]): { name: string; digest: Buffer }[] {
  const keys: { name: string; digest: Buffer }[] = [];
  const problem = (message: string) => problems.push({ field: KEYS_VARIABLE, message });
  entries(raw).forEach((entry, i) => {
    const colon = entry.indexOf(':');
    const name = colon < 0 ? '' : entry.slice(0, colon).trim();
    const key = colon < 0 ? '' : entry.slice(colon + 1).trim();
    if (!NAME.test(name))
      return problem(
        `entry ${i + 1} must be name:key, the name 1–40 letters, digits, '.', '_' or '-' (comma-separated pairs)`,
      );
    if (key.length < MIN_KEY_LENGTH)
      return problem(
        `the key of "${name}" has ${key.length} characters: at least ${MIN_KEY_LENGTH} are needed (e.g. openssl rand -base64 32)`,
      );
    if (keys.some((k) => k.name === name)) return problem(`the name "${name}" is given twice`);
    const hashed = digest(key);
    const same = keys.find((k) => k.digest.equals(hashed));
    if (same !== undefined) return problem(`"${name}" and "${same.name}" have the same key`);
    keys.push({ name, digest: hashed });
  });
  return keys;
}

function readAllowList(raw: string, problems: FieldProblem[]): BlockList | undefined {
  const list = entries(raw);
  if (list.length === 0) return undefined;
  const allow = new BlockList();
  for (const entry of list) {
    const [address = '', prefix, ...rest] = entry.split('/');
    const family = isIP(address);
    const bits = Number(prefix);
    const badPrefix = prefix !== undefined && (!/^\d{1,3}$/.test(prefix) || bits > (family === 6 ? 128 : 32));
    if (family === 0 || rest.length > 0 || badPrefix) {
      problems.push({
        field: ALLOW_VARIABLE,
        message: `"${entry}" is not an IP address or a CIDR (192.0.2.7, 10.0.0.0/8, 2001:db8::/32)`,
      });
      continue;
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) allow.addAddress(address, type);
    else allow.addSubnet(address, bits, type);
  }
  return allow;
}

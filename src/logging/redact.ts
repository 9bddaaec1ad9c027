/**
 * Property names that are always secret, compared case-insensitively. Kept for callers that read
 * the list; {@link isSecretKey} matches far more (any name that contains or is built from a secret
 * word: `authToken`, `dbPassword`, `x-session-id`, ...).
 */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'password',
  'passwd',
  'secret',
  'client_secret',
  'clientsecret',
  'token',
  'accesstoken',
  'access_token',
  'refreshtoken',
  'refresh_token',
  'idtoken',
  'apikey',
  'api_key',
  'adminkey',
  'admin_key',
  'dsn',
]);

/** What a redacted value is replaced with. */
export const CENSOR = '[redacted]';

/** What an object nested deeper than the walker looks is replaced with (it could hold a secret). */
export const TOO_DEEP = '[too deep]';

const MAX_DEPTH = 8;

/**
 * Secret anywhere inside a name, even run together with other words (`accesstoken`,
 * `x-api-key`, `set-cookie`, `DB_PASSWORD`). Long enough to be unambiguous as substrings.
 */
const SECRET_SUBSTRINGS = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'token',
  'apikey',
  'api_key',
  'api-key',
  'authorization',
  'cookie',
  'credential',
  'privatekey',
  'private_key',
  'adminkey',
  'admin_key',
  'accesskey',
  'access_key',
  'signingkey',
  'signing_key',
];

/**
 * Secret only as a whole word of a name (`auth`, `authHeader`, `x-auth-user`, `sessionId`,
 * `SENTRY_DSN`), because as substrings they are inside harmless words: `author`, `dsnless`...
 */
const SECRET_WORDS = new Set([
  'auth',
  'oauth',
  'pwd',
  'pass',
  'dsn',
  'private',
  'session',
  'sid',
  'jwt',
  'bearer',
  'csrf',
  'xsrf',
  'otp',
  'signature',
]);

/** `key` is secret after one of these words: `adminKey`, `api-key`, `encryption_key`; not `cacheKey`. */
const KEY_QUALIFIERS = new Set([
  'admin',
  'api',
  'access',
  'auth',
  'client',
  'encryption',
  'license',
  'master',
  'private',
  'secret',
  'session',
  'signing',
]);

/**
 * A name like `tokenCount` or `sessionTtl` ending in one of these describes a secret without being
 * one: its value is kept when it is a number (a string is still redacted, in case it is the secret).
 */
const METADATA_WORDS = new Set([
  'count',
  'total',
  'length',
  'size',
  'limit',
  'max',
  'min',
  'used',
  'usage',
  'ttl',
  'age',
  'expiry',
  'expires',
  'at',
  'ms',
]);

/** How a property name is treated: always censored, censored unless its value is a number, or kept. */
type Verdict = 'secret' | 'secret-unless-number' | 'public';

const verdicts = new Map<string, Verdict>();
const MAX_VERDICTS = 4_096;

/** Splits `xApiKey`, `x-api-key`, `X_API_KEY`, `api.key2` into lower-case words. */
function wordsOf(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z]+/)
    .filter((word) => word !== '');
}

function judge(key: string): Verdict {
  const lower = key.toLowerCase();
  const words = wordsOf(key);
  const named =
    SECRET_KEYS.has(lower) ||
    SECRET_SUBSTRINGS.some((part) => lower.includes(part)) ||
    words.some(
      (word, i) => SECRET_WORDS.has(word) || (word === 'key' && KEY_QUALIFIERS.has(words[i - 1] ?? '')),
    );
  if (!named) return 'public';
  const last = words.at(-1) ?? '';
  return words.length > 1 && METADATA_WORDS.has(last) ? 'secret-unless-number' : 'secret';
}

/**
 * Whether a property named `key` holds a secret (its value would be censored); case-insensitive.
 * A name is secret when it contains `password`, `passwd`, `passphrase`, `secret`, `token`, `apikey`
 * (`api_key`, `api-key`), `authorization`, `cookie`, `credential`, `privatekey`, `adminkey`,
 * `accesskey` or `signingkey`, or has one of the words `auth`, `oauth`, `pwd`, `pass`, `dsn`,
 * `private`, `session`, `sid`, `jwt`, `bearer`, `csrf`, `xsrf`, `otp`, `signature`, or the word
 * `key` after `admin`, `api`, `access`, `auth`, `client`, `encryption`, `license`, `master`,
 * `private`, `secret`, `session` or `signing` (words split at camelCase, `_`, `-`, `.` and digits).
 * `author`, `authorId`, `cacheKey` are not secret. A secret name ending in a metadata word
 * (`tokenCount`, `sessionTtl`, `passwordLength`) keeps a number value: pass `value` to decide that.
 */
export function isSecretKey(key: string, value?: unknown): boolean {
  const verdict = verdictOf(key);
  return verdict === 'secret' || (verdict === 'secret-unless-number' && typeof value !== 'number');
}

function verdictOf(key: string): Verdict {
  let verdict = verdicts.get(key);
  if (verdict === undefined) {
    // Log lines repeat the same few names; remembering them keeps the check a map lookup.
    if (verdicts.size >= MAX_VERDICTS) verdicts.clear();
    verdict = judge(key);
    verdicts.set(key, verdict);
  }
  return verdict;
}

/**
 * Returns `value` with the value of every property whose name {@link isSecretKey} (at any depth up
 * to 8, in arrays, and in errors' own properties and `errors` of an AggregateError) replaced by
 * `[redacted]`; `null`, `undefined` and booleans are left (they hold no secret). Objects nested deeper
 * are replaced by `[too deep]`, since they could not be inspected. Objects without secrets are
 * returned as they are, unchanged and uncopied; objects with secrets are copied along the path to
 * the secret, so the caller's object is never mutated. A copied error keeps its prototype, message
 * and stack.
 *
 * Hand-written rather than pino's `redact` wildcards: those cost several times more per line (see
 * docs/benchmarks.md, `npm run bench:logging`), and paths can only name keys, not patterns.
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (typeof value !== 'object' || value === null) return value;
  if (depth > MAX_DEPTH) return TOO_DEEP as T;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i += 1) {
      const item: unknown = value[i];
      const clean = redactSecrets(item, depth + 1);
      if (clean !== item) {
        copy ??= [...(value as unknown[])];
        copy[i] = clean;
      }
    }
    return (copy ?? value) as T;
  }
  let copy: Record<string, unknown> | undefined;
  const source = value as Record<string, unknown>;
  for (const key of Object.keys(source)) {
    const item = source[key];
    let clean: unknown;
    if (item !== undefined && item !== null && typeof item !== 'boolean' && isSecretKey(key, item))
      clean = CENSOR;
    else clean = redactSecrets(item, depth + 1);
    if (clean !== item) {
      copy ??= copyOf(source);
      copy[key] = clean;
    }
  }
  const inner: unknown = source instanceof Error ? (source as { errors?: unknown }).errors : undefined;
  if (Array.isArray(inner)) {
    // An AggregateError's `errors` is not enumerable, but pino's serializer writes each one out.
    const clean = redactSecrets(inner, depth + 1);
    if (clean !== inner) {
      copy ??= copyOf(source);
      Object.defineProperty(copy, 'errors', { value: clean, enumerable: false, writable: true });
    }
  }
  return (copy ?? value) as T;
}

/** A copy of the own enumerable properties; an error's copy keeps its prototype, message and stack. */
function copyOf(source: Record<string, unknown>): Record<string, unknown> {
  if (source instanceof Error) {
    const copy = Object.create(Object.getPrototypeOf(source) as object) as Record<string, unknown>;
    copy['message'] = source.message;
    copy['stack'] = source.stack;
    if ('cause' in source) copy['cause'] = (source as { cause?: unknown }).cause;
    return Object.assign(copy, source);
  }
  return { ...source };
}

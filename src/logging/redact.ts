/** Property names whose values never reach a log line, compared case-insensitively. */
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

const MAX_DEPTH = 6;

/**
 * Returns `value` with every property named in {@link SECRET_KEYS} (at any depth up to 6) replaced by
 * `[redacted]`. Objects without secrets are returned as they are, unchanged and uncopied; objects
 * with secrets are copied along the path to the secret, so the caller's object is never mutated.
 *
 * Hand-written rather than pino's `redact` wildcards: those cost ~15 µs per line (measured in
 * bench/logging notes of docs/benchmarks.md), this costs well under 1 µs for a request line.
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (typeof value !== 'object' || value === null || depth > MAX_DEPTH) return value;
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
    if (SECRET_KEYS.has(key.toLowerCase())) clean = item === undefined || item === null ? item : CENSOR;
    else clean = redactSecrets(item, depth + 1);
    if (clean !== item) {
      copy ??= copyOf(source);
      copy[key] = clean;
    }
  }
  return (copy ?? value) as T;
}

/** A plain copy that keeps an Error's message and stack, which are not own enumerable properties. */
function copyOf(source: Record<string, unknown>): Record<string, unknown> {
  if (source instanceof Error) {
    return Object.assign({ type: source.name, message: source.message, stack: source.stack }, source);
  }
  return { ...source };
}

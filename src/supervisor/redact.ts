// What the supervisor writes about an app (diagnostic reports, crash records, state.json) must hold
// none of the app's secrets, which it has in full: it passes the app its environment.
import { CENSOR, isSecretKey } from '../logging/redact.js';

/** What a redacted value is replaced with. */
export const REDACTED = CENSOR;

/**
 * True when a variable, option or query parameter called `name` holds a secret by its name: the
 * log redaction's rule (`isSecretKey`: `BULWARK_ADMIN_KEY`, `SENTRY_DSN`, `DB_PASSWORD`, `apiKey`,
 * `sslpassword`, `SESSION_SECRET`, ...), plus the word `key`, `salt` or `pat` on its own: in an
 * environment `STRIPE_KEY` or `HMAC_KEY` is a secret, where a log's `cacheKey` is not. `PWD` and
 * `OLDPWD` (directories) are not secrets.
 */
export function isSecretName(name: string): boolean {
  if (name === 'PWD' || name === 'OLDPWD') return false;
  return isSecretKey(name) || name.split(/[^A-Za-z]+/).some((word) => /^(keys?|salt|pat)$/i.test(word));
}

// scheme://user:password@host or scheme://token@host: the userinfo of a URL.
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@]*)@/gi;
// ?password=…, &token=…, ;sslpassword=… in a URL or a connection string.
const QUERY_PARAM = /([?&;])([^=&;#\s]+)=([^&;#\s]*)/g;
// --db-password=…, API_KEY=… as a command-line argument or a line of output.
const ASSIGNMENT = /^(-{0,2}[\w.-]+)=(.*)$/s;

/**
 * `text` with the credentials of every URL in it masked (`postgres://app:[redacted]@db/x`,
 * `https://[redacted]@sentry.example/1`), and the values of query parameters with a secret name
 * (`?password=[redacted]`). Text without either is returned as it is.
 */
export function redactUrls(text: string): string {
  if (!text.includes('://') && !text.includes('=')) return text;
  return text
    .replace(URL_USERINFO, (_all, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':');
      return `${scheme}${colon === -1 ? REDACTED : `${userinfo.slice(0, colon)}:${REDACTED}`}@`;
    })
    .replace(QUERY_PARAM, (all, sep: string, name: string, value: string) =>
      value !== '' && isSecretName(name) ? `${sep}${name}=${REDACTED}` : all,
    );
}

/**
 * The secret values of an environment, to be scrubbed from text written elsewhere (a crash
 * record's last lines, a report's command line): the values of variables with a secret name, and
 * the passwords of URLs in any variable. Values under 6 characters are left out (masking every
 * `true` or `1` would destroy the text and protect nothing). Longest first, so a secret that holds
 * another is masked whole.
 */
export function secretValues(env: NodeJS.ProcessEnv): string[] {
  const found = new Set<string>();
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (isSecretName(name)) found.add(value);
    for (const match of value.matchAll(URL_USERINFO)) {
      const userinfo = match[2] ?? '';
      const colon = userinfo.indexOf(':');
      found.add(colon === -1 ? userinfo : userinfo.slice(colon + 1));
      found.add(decodeURIComponentSafe(userinfo.slice(colon + 1)));
    }
    for (const match of value.matchAll(QUERY_PARAM))
      if (isSecretName(match[2] ?? '')) found.add(decodeURIComponentSafe(match[3] ?? ''));
  }
  return [...found].filter((value) => value.length >= 6).sort((a, b) => b.length - a.length);
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** `text` with every one of `secrets` (from {@link secretValues}) replaced by `[redacted]`. */
export function scrub(text: string, secrets: readonly string[]): string {
  let clean = redactUrls(text);
  for (const secret of secrets) if (clean.includes(secret)) clean = clean.split(secret).join(REDACTED);
  return clean;
}

/**
 * A copy of `value` (a Node diagnostic report, a status, a crash record) with no secret left in it:
 * a string under a property with a secret name is masked whole (so every environment variable of
 * a report with a secret name: its name kept, its value gone), a string in an array that assigns a
 * secret (`--db-password=x`, `API_KEY=x`: a command line) has its value masked, and every other
 * string has URL credentials and the known `secrets` (from {@link secretValues}) masked. Walks the
 * whole value, so a secret is masked wherever it appears. Does not mutate `value`.
 */
export function redactDeep<T>(value: T, secrets: readonly string[]): T {
  const walk = (item: unknown, key: string | undefined): unknown => {
    if (typeof item === 'string') {
      if (key !== undefined && item !== '' && isSecretName(key)) return REDACTED;
      const assignment = key === undefined ? ASSIGNMENT.exec(item) : null;
      if (assignment !== null && isSecretName(assignment[1] ?? '')) return `${assignment[1]}=${REDACTED}`;
      return scrub(item, secrets);
    }
    if (Array.isArray(item)) return item.map((element) => walk(element, undefined));
    if (typeof item === 'object' && item !== null) {
      const copy: Record<string, unknown> = {};
      for (const [name, child] of Object.entries(item)) copy[name] = walk(child, name);
      return copy;
    }
    return item;
  };
  return walk(value, undefined) as T;
}

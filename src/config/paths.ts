import { isDeepStrictEqual } from 'node:util';
import { REDACTED, type DiffEntry } from './types.js';

/** A plain object (not an array, not null). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `'db.poolSize'` → `['db', 'poolSize']`; the empty path is the root. */
export function splitPath(path: string): string[] {
  return path === '' ? [] : path.split('.');
}

/** The value at a dotted path, or `undefined` when any segment is missing. */
export function getIn(value: unknown, path: string): unknown {
  let current = value;
  for (const key of splitPath(path)) {
    if (!isPlainObject(current) || !Object.hasOwn(current, key)) return undefined;
    current = current[key];
  }
  return current;
}

/** A copy of `root` with `value` at `path` (intermediate objects created); `undefined` deletes. */
export function setIn(root: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const keys = splitPath(path);
  const copy = structuredClone(root);
  let current: Record<string, unknown> = copy;
  for (const key of keys.slice(0, -1)) {
    const next = current[key];
    if (!isPlainObject(next)) current[key] = {};
    current = current[key] as Record<string, unknown>;
  }
  const last = keys.at(-1);
  if (last === undefined) return isPlainObject(value) ? structuredClone(value) : copy;
  if (value === undefined) delete current[last];
  else current[last] = structuredClone(value);
  return copy;
}

/** Deep merge, later objects win; arrays and scalars replace, plain objects merge. */
export function deepMerge(...layers: Record<string, unknown>[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      const existing = out[key];
      out[key] =
        isPlainObject(existing) && isPlainObject(value) ? deepMerge(existing, value) : structuredClone(value);
    }
  }
  return out;
}

/** Every leaf (non-plain-object value) by dotted path. Empty objects count as leaves. */
export function flatten(value: unknown, prefix = ''): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (isPlainObject(value) && (Object.keys(value).length > 0 || prefix === '')) {
    for (const [key, child] of Object.entries(value)) {
      for (const [path, leaf] of flatten(child, prefix === '' ? key : `${prefix}.${key}`))
        out.set(path, leaf);
    }
  } else {
    out.set(prefix, value);
  }
  return out;
}

/** Freezes `value` and everything inside it; returns it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** True when `path` is a secret or lies inside one (`db.password`, or `db` when `db` is secret). */
export function isSecretPath(path: string, secrets: ReadonlySet<string>): boolean {
  const keys = splitPath(path);
  for (let i = 1; i <= keys.length; i++) if (secrets.has(keys.slice(0, i).join('.'))) return true;
  return false;
}

/** A copy of `value` (found at `path`) with every secret inside it replaced by `'[redacted]'`. */
export function redact(value: unknown, secrets: ReadonlySet<string>, path = ''): unknown {
  if (path !== '' && isSecretPath(path, secrets)) return value === undefined ? undefined : REDACTED;
  if (!isPlainObject(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, child]) => [
      key,
      redact(child, secrets, path === '' ? key : `${path}.${key}`),
    ]),
  );
}

/** The changed leaves from `before` to `after`, sorted by path, secrets redacted. */
export function diffConfigs(before: unknown, after: unknown, secrets: ReadonlySet<string>): DiffEntry[] {
  const a = flatten(before);
  const b = flatten(after);
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  const out: DiffEntry[] = [];
  for (const path of paths) {
    const x = a.get(path);
    const y = b.get(path);
    if (isDeepStrictEqual(x, y)) continue;
    out.push({ path, before: redact(x, secrets, path), after: redact(y, secrets, path) });
  }
  return out;
}

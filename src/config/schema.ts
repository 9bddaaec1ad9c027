import type { TObject, TSchema } from 'typebox';
import Value from 'typebox/value';
import type { FieldProblem } from '../errors/index.js';
import { isPlainObject } from './paths.js';

/** The JSON Schema keywords the manager looks at. */
interface SchemaNode {
  type?: unknown;
  properties?: Record<string, SchemaNode>;
  default?: unknown;
  secret?: unknown;
  enum?: unknown[];
  const?: unknown;
  anyOf?: SchemaNode[];
}

/** How a string (environment variable, dotenv value) converts to a leaf's type. */
export type LeafKind = 'integer' | 'number' | 'boolean' | 'string' | 'json' | 'auto';

/** One leaf field of the schema. */
export interface Leaf {
  path: string;
  /** `DB_POOL_SIZE` for `db.poolSize` (no prefix). */
  key: string;
  kind: LeafKind;
}

/** What the manager derives from the service's schema once, at construction. */
export interface SchemaInfo {
  leaves: Leaf[];
  /** Upper-snake key (no prefix) → leaf. */
  byKey: Map<string, Leaf>;
  /** Dotted paths marked `secret: true`. */
  secrets: Set<string>;
  /** The default layer: every `default` of the schema, nested. */
  defaults: Record<string, unknown>;
}

/** `db.poolSize` → `DB_POOL_SIZE`. */
export function keyOf(path: string): string {
  return path
    .split('.')
    .map((segment) => segment.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/[^A-Za-z0-9]+/g, '_'))
    .join('_')
    .toUpperCase();
}

/** Walks the schema: leaves (for env and dotenv keys), secrets and defaults. */
export function describeSchema(schema: TObject): SchemaInfo {
  const leaves: Leaf[] = [];
  const secrets = new Set<string>();
  const walk = (node: SchemaNode, path: string): void => {
    if (node.secret === true && path !== '') secrets.add(path);
    if (node.type === 'object' && node.properties !== undefined) {
      for (const [key, child] of Object.entries(node.properties))
        walk(child, path === '' ? key : `${path}.${key}`);
      return;
    }
    if (path !== '') leaves.push({ path, key: keyOf(path), kind: kindOf(node) });
  };
  walk(schema, '');
  const byKey = new Map<string, Leaf>();
  for (const leaf of leaves) if (!byKey.has(leaf.key)) byKey.set(leaf.key, leaf);
  return { leaves, byKey, secrets, defaults: defaultsOf(schema) as Record<string, unknown> };
}

function kindOf(node: SchemaNode): LeafKind {
  switch (node.type) {
    case 'integer':
    case 'number':
    case 'boolean':
    case 'string':
      return node.type;
    case 'array':
    case 'object':
      return 'json';
    default:
  }
  const values = node.enum ?? node.anyOf?.map((member) => member.const);
  if (values !== undefined && values.every((v) => typeof v === 'string')) return 'string';
  return 'auto';
}

function defaultsOf(node: SchemaNode): unknown {
  const own = node.default === undefined ? undefined : structuredClone(node.default);
  if (node.type !== 'object' || node.properties === undefined) return own;
  const out: Record<string, unknown> = isPlainObject(own) ? own : {};
  for (const [key, child] of Object.entries(node.properties)) {
    const value = defaultsOf(child);
    if (value === undefined || (isPlainObject(value) && Object.keys(value).length === 0)) continue;
    out[key] = isPlainObject(out[key]) && isPlainObject(value) ? { ...value, ...out[key] } : value;
  }
  return out;
}

/**
 * Converts a string to a leaf's type, strictly: integers are plain digits, numbers plain decimals,
 * booleans `true`/`false`, arrays and objects JSON. Returns the problem text instead when it does
 * not convert (without the value: the caller decides whether it may be shown).
 */
export function convert(kind: LeafKind, raw: string): { value: unknown } | { problem: string } {
  switch (kind) {
    case 'integer':
      return /^[-+]?\d+$/.test(raw) ? { value: Number(raw) } : { problem: 'expected an integer' };
    case 'number':
      return /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)
        ? { value: Number(raw) }
        : { problem: 'expected a number' };
    case 'boolean':
      return raw === 'true' || raw === 'false'
        ? { value: raw === 'true' }
        : { problem: 'expected true or false' };
    case 'string':
      return { value: raw };
    case 'json':
      try {
        return { value: JSON.parse(raw) as unknown };
      } catch {
        return { problem: 'expected JSON' };
      }
    case 'auto':
      try {
        return { value: JSON.parse(raw) as unknown };
      } catch {
        return { value: raw };
      }
  }
}

/** Every schema problem of `value`, one per field, by dotted path; `where(path)` adds a location. */
export function schemaProblems(
  schema: TSchema,
  value: unknown,
  where: (path: string) => string | undefined,
): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const seen = new Set<string>();
  const add = (path: string, message: string): void => {
    if (seen.has(path)) return;
    seen.add(path);
    const location = where(path);
    problems.push({
      field: path === '' ? '(root)' : path,
      message: location ? `${message} (${location})` : message,
    });
  };
  for (const error of Value.Errors(schema, value)) {
    const base = error.instancePath
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      .join('.');
    const join = (key: string): string => (base === '' ? key : `${base}.${key}`);
    const params = error.params as { requiredProperties?: string[]; additionalProperties?: string[] };
    if (error.keyword === 'required' && params.requiredProperties) {
      for (const key of params.requiredProperties) add(join(key), 'is required');
    } else if (error.keyword === 'additionalProperties' && params.additionalProperties) {
      for (const key of params.additionalProperties) add(join(key), 'is not a known field');
    } else if (error.keyword === 'boolean' && error.schemaPath.endsWith('additionalProperties')) {
      add(base, 'is not a known field');
    } else {
      add(base, error.message);
    }
  }
  return problems;
}

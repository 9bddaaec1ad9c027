import { bulwarkError, isBulwarkError, type BulwarkError, type FieldProblem } from '../errors/index.js';
import { isSecretPath, setIn } from './paths.js';
import { convert, type SchemaInfo } from './schema.js';

/** The environment layer: values converted to the schema's types, and the variable of each path. */
export interface EnvLayer {
  layer: Record<string, unknown>;
  /** Dotted path → variable name. */
  vars: Map<string, string>;
}

/** The variable of a path: `APP_DB_POOL_SIZE` for prefix `APP` and `db.poolSize`. */
export function envName(prefix: string | undefined, key: string): string {
  return prefix === undefined || prefix === '' ? key : `${prefix}_${key}`;
}

/**
 * Reads every schema leaf's variable from `env` (empty counts as unset) and converts it strictly.
 * Throws `BWK_ERR_CONFIG_INVALID` naming every variable that does not convert (a secret's value
 * is not echoed).
 */
export function readEnvLayer(
  info: SchemaInfo,
  env: NodeJS.ProcessEnv,
  prefix: string | undefined,
  label: string,
): EnvLayer {
  let layer: Record<string, unknown> = {};
  const vars = new Map<string, string>();
  const problems: FieldProblem[] = [];
  for (const leaf of info.leaves) {
    const name = envName(prefix, leaf.key);
    const raw = env[name]?.trim();
    if (raw === undefined || raw === '') continue;
    const converted = convert(leaf.kind, raw);
    if ('problem' in converted) {
      const shown = isSecretPath(leaf.path, info.secrets) ? '' : `, got ${JSON.stringify(raw)}`;
      problems.push({ field: name, message: `${converted.problem}${shown} (for ${leaf.path})` });
      continue;
    }
    layer = setIn(layer, leaf.path, converted.value);
    vars.set(leaf.path, name);
  }
  if (problems.length > 0) throw invalidConfig(label, problems);
  return { layer, vars };
}

/** `BWK_ERR_CONFIG_INVALID` listing every problem. */
export function invalidConfig(label: string, problems: FieldProblem[], cause?: unknown) {
  const summary = problems.map((p) => `${p.field} ${p.message}`).join('; ');
  return bulwarkError(
    'BWK_ERR_CONFIG_INVALID',
    { file: label, summary },
    cause === undefined ? { details: problems } : { details: problems, cause },
  );
}

/** True for the errors of a file's content (it does not parse, or does not validate). */
export function isConfigContentError(error: unknown): error is BulwarkError {
  return isBulwarkError(error, 'BWK_ERR_CONFIG_PARSE') || isBulwarkError(error, 'BWK_ERR_CONFIG_INVALID');
}

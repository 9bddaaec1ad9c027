import type { TObject } from 'typebox';
import type { FieldProblem } from '../errors/index.js';
import type { ConfigCodec, FileState } from './codec.js';
import { invalidConfig, type EnvLayer } from './env.js';
import { deepFreeze, deepMerge, flatten, getIn, redact } from './paths.js';
import type { Explanation } from './types.js';
import { schemaProblems, type SchemaInfo } from './schema.js';

/** A file's content evaluated against the schema and the environment. */
export interface Evaluated {
  text: string | undefined;
  state: FileState;
  /** Defaults + file: what revisions diff (the environment is per process). */
  fileConfig: Record<string, unknown>;
  /** Defaults + file + environment, deep-frozen. */
  config: Record<string, unknown>;
}

export interface Active extends Evaluated {
  revision: number;
  /** Set when the file was invalid at start and this is the last good revision's content. */
  fallback: boolean;
}

/** What evaluating a file needs from its manager. */
export interface EvaluationContext {
  readonly schema: TObject;
  readonly label: string;
  readonly info: SchemaInfo;
  readonly codec: ConfigCodec;
  readonly envLayer: EnvLayer;
}

/**
 * Parses and validates file text over the schema's defaults and under the environment; throws
 * `BWK_ERR_CONFIG_PARSE` or `BWK_ERR_CONFIG_INVALID` naming every problem with its line (none for
 * `proposed` content, which is not written yet) or its variable.
 */
export function evaluateConfig(
  ctx: EvaluationContext,
  text: string | undefined,
  proposed = false,
): Evaluated {
  const state = ctx.codec.parse(text);
  const fileConfig = deepMerge(ctx.info.defaults, state.layer);
  const config = deepMerge(fileConfig, ctx.envLayer.layer);
  const where = (p: string): string | undefined => {
    const name = ctx.envLayer.vars.get(p);
    if (name !== undefined) return name;
    // Lines of content not yet written would point at nothing the caller can see.
    const line = proposed ? undefined : state.lines.get(p);
    return line === undefined ? undefined : `${ctx.label} line ${line}`;
  };
  const problems: FieldProblem[] = [...state.problems, ...schemaProblems(ctx.schema, config, where)];
  if (problems.length > 0) throw invalidConfig(ctx.label, problems);
  return { text, state, fileConfig, config: deepFreeze(config) };
}

/** Where the value at `path` comes from: the environment, the file (with its line) or a default. */
export function explainPath(
  active: Active,
  path: string,
  envLayer: EnvLayer,
  file: string,
  secrets: Set<string>,
): Explanation {
  const value = redact(getIn(active.config, path), secrets, path);
  const under = (map: Map<string, unknown>) =>
    [...map.keys()].find((p) => p === path || p.startsWith(`${path}.`) || path.startsWith(`${p}.`));
  const envPath = under(envLayer.vars);
  if (envPath !== undefined) return { path, value, layer: 'env', source: envLayer.vars.get(envPath) ?? '' };
  const filePath = under(flatten(active.state.layer));
  if (filePath !== undefined) {
    const line = active.state.lines.get(path) ?? active.state.lines.get(filePath);
    const where = active.fallback ? `${file}@${active.revision}` : file;
    return { path, value, layer: 'file', source: line === undefined ? where : `${where}:${line}` };
  }
  return { path, value, layer: 'default', source: 'schema' };
}

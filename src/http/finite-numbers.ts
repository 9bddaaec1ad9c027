import type { Ajv, AnySchema, ValidateFunction } from 'ajv';

/** How deep a request part is searched for a number that is not finite. */
const MAX_DEPTH = 32;

/**
 * The path (`/a/0/b`) of the first number in `data` that is not finite, if any: Ajv's type
 * coercion turns the query value `?limit=1e309` into `Infinity`, and its `maximum` check skips
 * numbers that are not finite, so an out-of-range value would reach the handler (and the database).
 */
export function nonFinitePath(data: unknown, path = '', depth = 0): string | undefined {
  if (typeof data === 'number') return Number.isFinite(data) ? undefined : path;
  if (typeof data !== 'object' || data === null || depth >= MAX_DEPTH) return undefined;
  if (Array.isArray(data)) {
    for (let i = 0; i < data.length; i++) {
      const found = nonFinitePath(data[i], `${path}/${i}`, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const key in data) {
    if (!Object.hasOwn(data, key)) continue;
    const found = nonFinitePath((data as Record<string, unknown>)[key], `${path}/${key}`, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * An Ajv plugin (Fastify's `ajv.plugins`): every validator it compiles also refuses, after Ajv's own
 * checks and coercion, a number that is not finite, as a validation error on that field.
 */
export function finiteNumbers(ajv: Ajv): Ajv {
  const compile = ajv.compile.bind(ajv);
  ajv.compile = (<T>(schema: AnySchema, meta?: boolean): ValidateFunction<T> => {
    const validate = compile<T>(schema, meta);
    const checked = function (this: unknown, data: unknown, ...rest: unknown[]): boolean {
      const ok = (validate as (this: unknown, ...args: unknown[]) => boolean).call(this, data, ...rest);
      checked.errors = validate.errors;
      if (!ok) return false;
      const at = nonFinitePath(data);
      if (at === undefined) return true;
      checked.errors = [
        {
          instancePath: at,
          schemaPath: '#',
          keyword: 'type',
          params: {},
          message: 'must be a finite number',
        },
      ];
      return false;
    } as ValidateFunction<T>;
    return Object.assign(checked, { schema: validate.schema, schemaEnv: validate.schemaEnv });
  }) as Ajv['compile'];
  return ajv;
}

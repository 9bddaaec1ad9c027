// Route schemas compiled when first needed instead of at start-up. Fastify compiles every route's
// validator (Ajv) and response serializer (fast-json-stringify) while the app starts: with the ~40
// schema'd routes of the admin API that was ~75 ms of the demo app's start-up, which under the
// supervisor is downtime after a crash. Here each route gets a stand-in that compiles its real
// function on first use, and whatever is still uncompiled once the app has been quiet for a moment
// is compiled in the background, one schema per event-loop turn, so a first request rarely pays.
import ValidatorSelector from '@fastify/ajv-compiler';
import SerializerSelector from '@fastify/fast-json-stringify-compiler';
import type { Plugin } from 'ajv';
import type {
  FastifyInstance,
  FastifySchemaCompiler,
  FastifySerializerCompiler as SerializerCompiler,
} from 'fastify';
import { finiteNumbers } from './finite-numbers.js';

type FastifyValidatorCompiler = FastifySchemaCompiler<unknown>;
type FastifySerializerCompiler = SerializerCompiler<unknown>;

/** How long after the last route was added the background compilation starts. */
const WARM_DELAY_MS = 1_000;

/** Compilations not done yet, run in the background (one per turn) once routes stop being added. */
class Backlog {
  readonly #pending: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;

  add(compile: () => void): void {
    this.#pending.push(compile);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#next(), WARM_DELAY_MS).unref();
  }

  #next(): void {
    const compile = this.#pending.shift();
    if (compile === undefined) return;
    compile();
    this.#timer = setTimeout(() => this.#next(), 0).unref();
  }
}

/**
 * `compile` on first call of the returned function, then that function; a compile that throws (a
 * broken schema) throws at every call, so the request gets Fastify's 500 and the error is logged.
 */
function deferred<F extends (...args: never[]) => unknown>(
  backlog: Backlog,
  compile: () => F,
): { get: () => F } {
  let compiled: F | undefined;
  let failure: Error | undefined;
  const get = (): F => {
    if (compiled !== undefined) return compiled;
    if (failure !== undefined) throw failure;
    try {
      compiled = compile();
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error));
      throw failure;
    }
    return compiled;
  };
  backlog.add(() => {
    try {
      get();
    } catch {
      // Thrown again, and so reported, at the route's first request.
    }
  });
  return { get };
}

/**
 * A headers schema with its property names in lower case, as Node gives header names: Fastify does
 * this for its own compiler only (a custom compiler gets the schema as written).
 */
function lowerCaseHeaders(schema: unknown): unknown {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return schema;
  const { properties, required } = schema as { properties?: unknown; required?: unknown };
  const lowered: Record<string, unknown> = { ...schema };
  if (typeof properties === 'object' && properties !== null)
    lowered['properties'] = Object.fromEntries(
      Object.entries(properties).map(([name, value]) => [name.toLowerCase(), value]),
    );
  if (Array.isArray(required))
    lowered['required'] = required.map((name: unknown) =>
      typeof name === 'string' ? name.toLowerCase() : name,
    );
  return lowered;
}

/** Validator and serializer compilers for one Fastify context (`setValidatorCompiler`, ...). */
export interface LazyCompilers {
  validator: FastifyValidatorCompiler;
  serializer: FastifySerializerCompiler;
}

/**
 * Ajv's options over Fastify's defaults: a property a schema does not allow (`additionalProperties:
 * false`) is an error naming it instead of being removed in silence.
 */
export const STRICT_BODIES = { removeAdditional: false } as const;

/**
 * Fastify's default compilers (its Ajv options, plus `plugins`, e.g. {@link finiteNumbers}) and
 * fast-json-stringify, made lazy, for the routes of one encapsulated context: Bulwark sets them on
 * its own contexts only, so an app's routes compile as the app chose. A broken schema fails its
 * route's requests (500, logged) instead of the start; `test/http.test.ts` requests every route.
 */
export function lazySchemaCompilers(plugins: Plugin<unknown>[] = []): LazyCompilers {
  const backlog = new Backlog();
  let validators: ReturnType<ReturnType<typeof ValidatorSelector>> | undefined;
  let serializers: ReturnType<ReturnType<typeof SerializerSelector>> | undefined;
  const validator: FastifyValidatorCompiler = (route) => {
    const definition =
      route.httpPart === 'headers' ? { ...route, schema: lowerCaseHeaders(route.schema) } : route;
    const compiled = deferred(backlog, () =>
      (validators ??= ValidatorSelector()({}, { customOptions: STRICT_BODIES, plugins }))(definition),
    );
    // Fastify reads `.errors` off the function it called after a failed validation.
    const validate = ((data: unknown) => {
      const real = compiled.get();
      const result = real(data);
      validate.errors = real.errors;
      return result;
    }) as ReturnType<FastifyValidatorCompiler> & { errors?: unknown };
    return validate;
  };
  const serializer: FastifySerializerCompiler = (route) => {
    // Fastify always passes httpStatus to a serializer compiler; its type says it may not.
    const definition = route as Parameters<ReturnType<ReturnType<typeof SerializerSelector>>>[0];
    const compiled = deferred(backlog, () => (serializers ??= SerializerSelector()({}, {}))(definition));
    return (doc: unknown) => compiled.get()(doc);
  };
  return { validator, serializer };
}

/**
 * Compiles the route schemas of `context` (an encapsulated context: `app.register(async (context)
 * => { lazySchemas(context); ...routes })`) when first used instead of at start-up, and the rest in
 * the background a second after the last route was added: Fastify's own Ajv options and
 * fast-json-stringify, numbers refused when not finite ({@link finiteNumbers}). Bulwark's routes
 * use it; for an app's routes it trades a failed start on a broken schema for a 500 at its first
 * request (logged), so test every route. Shared schemas (`addSchema`) are not seen: use it on
 * routes that do not `$ref` them.
 */
export function lazySchemas(context: FastifyInstance): void {
  // One pair for every context, so they share one Ajv instance (its meta-schema compiled once).
  shared ??= lazySchemaCompilers([finiteNumbers]);
  context.setValidatorCompiler(shared.validator);
  context.setSerializerCompiler(shared.serializer);
}

let shared: LazyCompilers | undefined;

// Route schemas compiled on first use (src/http/lazy-schemas.ts): the same answers as Fastify's own
// compilers, nothing compiled at start-up, the rest compiled in the background, and a broken schema
// failing its own route's requests (coded, logged) rather than the start or other routes.
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { lazySchemaCompilers, lazySchemas, STRICT_BODIES } from '../src/http/lazy-schemas.js';

/** An Ajv plugin, as `lazySchemaCompilers` takes them. */
type AjvPlugin = NonNullable<Parameters<typeof lazySchemaCompilers>[0]>[number];

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

const body = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 2 },
    count: { type: 'integer', default: 1 },
    tags: { type: 'array', items: { type: 'string' } },
  },
  required: ['name'],
  additionalProperties: false,
};
const querystring = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 100 },
    on: { type: 'boolean' },
    n: { type: 'number' },
  },
};
const headers = {
  type: 'object',
  properties: { 'X-Api-Version': { type: 'string', enum: ['1', '2'] } },
  required: ['X-Api-Version'],
};
const response = {
  200: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      count: { type: 'integer' },
      tags: { type: 'array' },
      limit: {},
      on: {},
    },
  },
};

/** One route with body, query, header and response schemas, in a lazy or in Fastify's own context. */
async function app(lazy: boolean): Promise<FastifyInstance> {
  // Fastify's own compilers with the Ajv options Bulwark gives them (fastifyOptions()).
  const instance = Fastify({ ajv: { customOptions: STRICT_BODIES } });
  apps.push(instance);
  await instance.register(async (context) => {
    if (lazy) lazySchemas(context);
    context.post('/things', { schema: { body, querystring, headers, response } }, async (request) => ({
      ...(request.body as object),
      ...(request.query as object),
      secret: 'not in the response schema',
    }));
  });
  await instance.ready();
  return instance;
}

const requests: { payload: object; query: Record<string, string>; version?: string | null }[] = [
  { payload: { name: 'ab', tags: ['x'] }, query: { limit: '5', on: 'true' } },
  { payload: { name: 'ab', extra: 1 }, query: {} },
  { payload: { name: 'a' }, query: {} },
  { payload: { count: 2 }, query: {} },
  { payload: { name: 'ab', count: 'many' }, query: {} },
  { payload: { name: 'ab', tags: 'x' }, query: {} },
  { payload: { name: 'ab' }, query: { limit: '0' } },
  { payload: { name: 'ab' }, query: { limit: 'ten' } },
  { payload: { name: 'ab' }, query: {}, version: '3' },
  { payload: { name: 'ab' }, query: {}, version: null },
];

describe('lazy route schemas', () => {
  it('answer every valid and invalid request exactly as Fastify’s own compilers do (coercion, defaults, unknown properties refused, errors, headers by any case)', async () => {
    const eager = await app(false);
    const lazy = await app(true);
    const statuses: number[] = [];
    for (const { payload, query, version } of requests) {
      const request = {
        method: 'POST' as const,
        url: '/things',
        payload,
        query,
        headers: version === null ? {} : { 'x-api-version': version ?? '2' },
      };
      const [a, b] = [await eager.inject(request), await lazy.inject(request)];
      expect([b.statusCode, b.json()], JSON.stringify(request)).toEqual([a.statusCode, a.json()]);
      statuses.push(a.statusCode);
    }
    // tags: "x" is coerced into ["x"] (Fastify's coerceTypes: "array"); `extra` is refused, not dropped.
    expect(statuses).toEqual([200, 400, 400, 400, 400, 200, 400, 400, 400, 400]);
  });

  it('compiles nothing while the app starts, each schema at its first use, the rest in the background', async () => {
    let compiled = 0;
    const counting: AjvPlugin = (ajv) => {
      const compile = ajv.compile.bind(ajv);
      ajv.compile = ((schema: object) => {
        compiled += 1;
        return compile(schema);
      }) as typeof ajv.compile;
      return ajv;
    };
    const instance = Fastify();
    apps.push(instance);
    await instance.register(async (context) => {
      const compilers = lazySchemaCompilers([counting]);
      context.setValidatorCompiler(compilers.validator);
      context.setSerializerCompiler(compilers.serializer);
      context.post('/a', { schema: { body, querystring } }, async () => ({}));
      context.post('/b', { schema: { body } }, async () => ({}));
    });
    await instance.ready();
    expect(compiled).toBe(0);
    expect((await instance.inject({ method: 'POST', url: '/b', payload: { name: 'x' } })).statusCode).toBe(
      400,
    );
    expect(compiled).toBe(1);
    // A second after the last route was added, the other two compile, one per event-loop turn.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(compiled).toBe(3);
  });

  it('a broken schema fails its own route with a logged 500, not the start nor the other routes', async () => {
    const logged: string[] = [];
    const instance = Fastify({
      logger: { level: 'error', stream: { write: (line: string) => void logged.push(line) } },
    });
    apps.push(instance);
    await instance.register(async (context) => {
      lazySchemas(context);
      context.post(
        '/broken',
        { schema: { body: { type: 'object', properties: { a: { type: 'nope' } } } } },
        async () => ({}),
      );
      context.post('/fine', { schema: { body } }, async () => ({ ok: true }));
    });
    await instance.ready();
    const broken = await instance.inject({ method: 'POST', url: '/broken', payload: { a: 1 } });
    expect(broken.statusCode).toBe(500);
    expect(logged.join('\n')).toMatch(/schema is invalid: data\/properties\/a\/type/);
    // Still broken at the next request; the other route is unaffected.
    expect((await instance.inject({ method: 'POST', url: '/broken', payload: { a: 1 } })).statusCode).toBe(
      500,
    );
    expect(
      (await instance.inject({ method: 'POST', url: '/fine', payload: { name: 'ok' } })).statusCode,
    ).toBe(200);
  });

  it('refuses numbers that are not finite, naming the field', async () => {
    const instance = await app(true);
    const res = await instance.inject({
      method: 'POST',
      url: '/things',
      query: { n: '1e309' },
      payload: { name: 'ab' },
      headers: { 'x-api-version': '1' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ message: expect.stringMatching(/n.*finite/) as unknown });
  });
});

import Fastify from 'fastify';
import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  HTTPMethods,
  onRequestAsyncHookHandler,
  RouteOptions,
} from 'fastify';

/** Where the documentation is served. */
const PREFIX = '/api-docs';

/** What the document says of itself, and the app's own security schemes. */
export interface DocsInfo {
  title: string;
  version: string;
  description?: string;
  securitySchemes?: Record<string, object>;
}

/**
 * OpenAPI 3 generated from route schemas; Swagger UI at `/api-docs`, JSON at `/api-docs/json`, YAML
 * at `/api-docs/yaml`. With `onRequest`, every documentation route but Swagger UI's own static
 * files runs it first (the key guard of `BULWARK_PROTECT_ENDPOINTS=api-docs`).
 *
 * Nothing of the documentation is loaded at start-up: the app's routes are only noted as they are
 * added (an onRoute hook), and the first request for the document builds it with `@fastify/swagger`
 * (with its YAML writer, ~330 KB of code every start would otherwise load) in a Fastify instance of
 * its own holding the same routes. Swagger UI (`@fastify/swagger-ui` over `@fastify/static`) is set
 * up at the first request for one of its pages, in another instance serving that document; its
 * answers are passed on as they are (status, headers such as its CSP, body).
 */
export async function registerApiDocs(
  app: FastifyInstance,
  info: DocsInfo,
  onRequest?: onRequestAsyncHookHandler,
): Promise<void> {
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (route) => {
    // HEAD routes Fastify adds for each GET are not documented (as @fastify/swagger does by default).
    if (route.method !== 'HEAD') routes.push(route);
  });
  let documents: Promise<Documents> | undefined;
  const documentation = () =>
    (documents ??= describe(routes, info).catch((error: unknown) => {
      documents = undefined; // tried again at the next request
      throw error;
    }));
  const guarded = onRequest === undefined ? {} : { onRequest };
  const methods: HTTPMethods[] = ['GET', 'HEAD'];
  // Encapsulated: nothing here runs for the app's other routes.
  await app.register(async (docs) => {
    docs.route({
      method: methods,
      url: `${PREFIX}/json`,
      schema: { hide: true },
      ...guarded,
      handler: async () => (await documentation()).json,
    });
    docs.route({
      method: methods,
      url: `${PREFIX}/yaml`,
      schema: { hide: true },
      ...guarded,
      handler: async (_request, reply) => reply.type('application/x-yaml').send((await documentation()).yaml),
    });
    let ui: Promise<FastifyInstance> | undefined;
    const forward = async (request: FastifyRequest, reply: FastifyReply) => {
      ui ??= swaggerUi((await documentation()).json).catch((error: unknown) => {
        ui = undefined; // tried again at the next request
        throw error;
      });
      const answer = await (
        await ui
      ).inject({
        method: request.method,
        url: request.url,
        headers: pick(request.headers, [
          'accept',
          'accept-encoding',
          'if-none-match',
          'if-modified-since',
          'range',
        ]),
      });
      // A file Swagger UI does not have gets the app's own coded 404.
      if (answer.statusCode === 404) return reply.callNotFound();
      const headers = omit(answer.headers, ['content-length', 'transfer-encoding', 'connection', 'date']);
      return reply.code(answer.statusCode).headers(headers).send(answer.rawPayload);
    };
    // Swagger UI's pages run the guard; its static files (scripts, styles, images) do not.
    for (const url of ['', '/', '/*', '/static/index.html', '/static/swagger-initializer.js'])
      docs.route({
        method: methods,
        url: `${PREFIX}${url}`,
        schema: { hide: true },
        ...guarded,
        handler: forward,
      });
    docs.route({ method: methods, url: `${PREFIX}/static/*`, schema: { hide: true }, handler: forward });
  });
}

/** What `@fastify/swagger` is told about the document: its version, info, tags and security schemes. */
function openapiOptions({ securitySchemes, ...info }: DocsInfo) {
  return {
    openapi: '3.0.3',
    info,
    tags: [
      { name: 'health', description: 'Health checks (application/health+json)' },
      { name: 'metrics', description: 'Prometheus metrics' },
      {
        name: 'admin',
        description: 'Admin API (a Bearer admin key or the console session; every request audited)',
      },
    ],
    components: {
      securitySchemes: {
        adminKey: {
          type: 'http' as const,
          scheme: 'bearer',
          description: 'a key of bulwark keys, or BULWARK_ADMIN_KEY',
        },
        metricsToken: { type: 'http' as const, scheme: 'bearer', description: 'BULWARK_METRICS_TOKEN' },
        ...securitySchemes,
      },
    },
  };
}

/** The OpenAPI document, as an object and as YAML. */
interface Documents {
  json: unknown;
  yaml: string;
}

/**
 * The OpenAPI document of `routes`, made by `@fastify/swagger` in a Fastify instance of its own that
 * holds the same routes (their schemas, none compiled: nothing is served from it).
 */
async function describe(routes: readonly RouteOptions[], info: DocsInfo): Promise<Documents> {
  const { default: swagger } = await import('@fastify/swagger');
  const instance = Fastify({ logger: false, exposeHeadRoutes: false });
  instance.setValidatorCompiler(() => () => true);
  instance.setSerializerCompiler(() => (data) => JSON.stringify(data));
  await instance.register(swagger, { openapi: openapiOptions(info) });
  const seen = new Set<string>();
  for (const route of routes) {
    const key = `${String(route.method)} ${route.url}`;
    if (seen.has(key)) continue;
    seen.add(key);
    instance.route({
      method: route.method,
      url: route.url,
      ...(route.schema === undefined ? {} : { schema: route.schema }),
      ...(route.config === undefined ? {} : { config: route.config }),
      handler: async () => null,
    });
  }
  await instance.ready();
  const documents = { json: instance.swagger(), yaml: instance.swagger({ yaml: true }) };
  await instance.close();
  return documents;
}

/** Swagger UI in an instance of its own, serving `document` under {@link PREFIX}. */
async function swaggerUi(document: unknown): Promise<FastifyInstance> {
  const [{ default: swagger }, { default: ui }] = await Promise.all([
    import('@fastify/swagger'),
    import('@fastify/swagger-ui'),
  ]);
  const instance = Fastify({ logger: false });
  await instance.register(swagger, { mode: 'static', specification: { document: document as never } });
  await instance.register(ui, { routePrefix: PREFIX, staticCSP: true });
  await instance.ready();
  return instance;
}

/** The headers of `headers` named in `names`. */
function pick<T extends object>(headers: T, names: string[]): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).filter(([name, value]) => names.includes(name) && typeof value === 'string'),
  );
}

/** `headers` without those named in `names`. */
function omit(
  headers: Record<string, string | number | string[] | undefined>,
  names: string[],
): Record<string, string | number | string[] | undefined> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !names.includes(name)));
}

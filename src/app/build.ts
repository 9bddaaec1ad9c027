import Fastify, { type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { lazySchemas } from '../http/lazy-schemas.js';
import { bulwark as bulwarkPlugin, fastifyOptions } from '../http/plugin.js';
import { createBulwark, type Bulwark, type BulwarkOptions } from '../runtime/create.js';

/**
 * The demo's own configuration (`<BULWARK_DATA_DIR>/config.json`, hot-reloaded; `bulwark config`
 * reads and edits it): what `GET /` calls the app. A file that is broken from the start stops the
 * server with exit 78; one broken later leaves it on the last good revision (docs/config.md).
 */
export const DemoConfig = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 100, default: 'bulwark demo' }),
});

/**
 * The placeholder app `npm start` serves until the Spin reference app replaces it: Bulwark mounted
 * on its defaults plus two demo routes. Built without listening, so tests use `app.inject()`.
 * The app owns the Bulwark it creates: `app.close()` closes it.
 */
export async function buildApp(options: BulwarkOptions = {}): Promise<FastifyInstance> {
  const bulwark: Bulwark = await createBulwark({
    serviceId: 'bulwark-demo',
    config: { schema: DemoConfig },
    ...options,
  });
  const app = Fastify(fastifyOptions(bulwark)).withTypeProvider<TypeBoxTypeProvider>();
  try {
    await app.register(bulwarkPlugin, { bulwark, title: 'Bulwark demo' });
    app.addHook('onClose', async () => bulwark.close());
    // The demo's routes, their schemas compiled on first use as Bulwark's own are.
    await app.register(demoRoutes, { bulwark });
    await app.ready();
  } catch (error) {
    await app.close().catch(() => undefined);
    await bulwark.close();
    throw error;
  }
  return app;
}

/** The demo's own routes: where to look next, and a validated echo. */
async function demoRoutes(app: FastifyInstance, { bulwark }: { bulwark: Bulwark }): Promise<void> {
  lazySchemas(app);
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  typed.get(
    '/',
    {
      schema: {
        tags: ['demo'],
        summary: 'Where to look next',
        response: {
          200: Type.Object({ name: Type.String(), links: Type.Record(Type.String(), Type.String()) }),
        },
      },
    },
    async () => ({
      name: (bulwark.config?.get('name') as string | undefined) ?? 'bulwark demo',
      links: { health: '/health', ready: '/health/ready', metrics: '/metrics', apiDocs: '/api-docs' },
    }),
  );

  typed.post(
    '/echo',
    {
      schema: {
        tags: ['demo'],
        summary: 'Echoes a validated message (shows coded 400s for bad input)',
        body: Type.Object(
          {
            message: Type.String({ minLength: 1, maxLength: 1000 }),
            delayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 30_000 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ message: Type.String(), requestId: Type.String() }) },
      },
    },
    async (request) => {
      // The delay lets shutdown tests hold a request in flight.
      if (request.body.delayMs !== undefined) await new Promise((r) => setTimeout(r, request.body.delayMs));
      return { message: request.body.message, requestId: request.id };
    },
  );
}

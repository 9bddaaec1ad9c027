import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';

/**
 * OpenAPI 3 generated from route schemas; Swagger UI at `/api-docs`, JSON at `/api-docs/json`. With
 * `onRequest`, every documentation route but Swagger UI's own static files runs it first (the key
 * guard of `BULWARK_PROTECT_ENDPOINTS=api-docs`).
 */
export async function registerApiDocs(
  app: FastifyInstance,
  info: { title: string; version: string; description?: string },
  onRequest?: onRequestAsyncHookHandler,
): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info,
      tags: [
        { name: 'health', description: 'Health checks (application/health+json)' },
        { name: 'metrics', description: 'Prometheus metrics' },
        { name: 'admin', description: 'Admin API (Bearer BULWARK_ADMIN_KEY; every request audited)' },
      ],
      components: {
        securitySchemes: {
          adminKey: { type: 'http', scheme: 'bearer', description: 'BULWARK_ADMIN_KEY' },
          metricsToken: { type: 'http', scheme: 'bearer', description: 'BULWARK_METRICS_TOKEN' },
        },
      },
    },
  });
  // Encapsulated: swagger-ui's CSP onSend hook would otherwise run on every response of the app.
  await app.register(async (docs) => {
    await docs.register(swaggerUi, {
      routePrefix: '/api-docs',
      staticCSP: true,
      // swagger-ui takes callback-style hooks.
      ...(onRequest === undefined
        ? {}
        : {
            uiHooks: {
              onRequest: (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => {
                onRequest.call(docs, request, reply).then(() => done(), done);
              },
            },
          }),
    });
  });
}

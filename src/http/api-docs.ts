import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';

/** OpenAPI 3 generated from route schemas; Swagger UI at `/api-docs`, JSON at `/api-docs/json`. */
export async function registerApiDocs(
  app: FastifyInstance,
  info: { title: string; version: string; description?: string },
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
        securitySchemes: { adminKey: { type: 'http', scheme: 'bearer', description: 'BULWARK_ADMIN_KEY' } },
      },
    },
  });
  // Encapsulated: swagger-ui's CSP onSend hook would otherwise run on every response of the app.
  await app.register(async (docs) => {
    await docs.register(swaggerUi, { routePrefix: '/api-docs', staticCSP: true });
  });
}

// The API documentation: the OpenAPI document from the route schemas at /api-docs/json and /yaml,
// and Swagger UI, which is set up at its first request rather than at start-up.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app/build.js';

const run = promisify(execFile);

let app: FastifyInstance;
beforeAll(async () => {
  app = await buildApp({ env: {}, store: { sqliteFile: ':memory:' }, defaultMetrics: false });
});
afterAll(async () => {
  await app.close();
});

describe('API docs', () => {
  it('serve the OpenAPI document as JSON and YAML', async () => {
    const json = await app.inject({ url: '/api-docs/json' });
    expect(json.statusCode).toBe(200);
    expect(json.json<{ paths: Record<string, unknown> }>().paths).toHaveProperty('/echo');
    const yaml = await app.inject({ url: '/api-docs/yaml' });
    expect([yaml.statusCode, yaml.headers['content-type']]).toEqual([200, 'application/x-yaml']);
    expect(yaml.body).toMatch(/^openapi: 3\.0\.3/m);
  });

  it('serve Swagger UI: its page with its CSP, its scripts and styles, its initializer pointing at the document', async () => {
    const page = await app.inject({ url: '/api-docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'/);
    const assets = [...page.body.matchAll(/(?:src|href)="\.\/([^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toEqual(expect.arrayContaining(['static/swagger-ui-bundle.js', 'static/swagger-ui.css']));
    for (const asset of assets) {
      const res = await app.inject({ url: `/api-docs/${asset}` });
      expect([asset, res.statusCode, res.rawPayload.length > 0]).toEqual([asset, 200, true]);
    }
    const bundle = await app.inject({ url: '/api-docs/static/swagger-ui-bundle.js' });
    expect(bundle.headers['content-type']).toMatch(/javascript/);
    const initializer = await app.inject({ url: '/api-docs/static/swagger-initializer.js' });
    expect(initializer.body).toContain('json');
    // Its other addresses of the page redirect to it, as Swagger UI does.
    expect((await app.inject({ url: '/api-docs/static/index.html' })).statusCode).toBe(302);
    const missing = await app.inject({ url: '/api-docs/static/no-such-file.js' });
    expect([missing.statusCode, missing.json<{ error: { code: string } }>().error.code]).toEqual([
      404,
      'BWK_ERR_HTTP_NOT_FOUND',
    ]);
  });

  it('load @fastify/swagger (and its YAML writer) at the first request for the document, Swagger UI at the first for a page, none at start-up', async () => {
    const script = `
      import { createRequire } from 'node:module';
      import { buildApp } from './src/app/build.ts';
      const require = createRequire(import.meta.url);
      const loaded = (pattern) => Object.keys(require.cache).some((file) => pattern.test(file));
      const ui = () => loaded(/@fastify[\\\\/](static|swagger-ui)[\\\\/]/);
      const docs = () => loaded(/@fastify[\\\\/]swagger[\\\\/]/) || loaded(/node_modules[\\\\/]yaml[\\\\/]/);
      const app = await buildApp({ env: {}, store: { sqliteFile: ':memory:' } });
      const before = { docs: docs(), ui: ui() };
      const json = (await app.inject({ url: '/api-docs/json' })).statusCode;
      const afterJson = { docs: docs(), ui: ui() };
      const page = (await app.inject({ url: '/api-docs/' })).statusCode;
      console.log(JSON.stringify({ before, json, afterJson, page, afterPage: ui() }));
      await app.close();
    `;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { PATH: process.env['PATH'], LOG_LEVEL: 'silent' },
    });
    const result = stdout.split('\n').find((line) => line.startsWith('{"before"'));
    expect(JSON.parse(result ?? '{}')).toEqual({
      before: { docs: false, ui: false },
      json: 200,
      afterJson: { docs: true, ui: false },
      page: 200,
      afterPage: true,
    });
  });
});

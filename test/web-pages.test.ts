// An app's own built pages served by webPages() (bulwark/fastify), at the root of the site beside the
// app's API: the page with the strict CSP at `/` and every deep link, never for the API's paths or
// an unknown asset (coded 404s), assets by exact name, precompressed; the build's service worker at
// /sw.js (a coded 404 when it has none); a coded 503 when not built.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STRICT_CSP, webPages } from '../src/fastify.js';
import { errorHandler } from '../src/http/error-handler.js';

const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-pages-'));
const script = 'console.log("app");\n';
const worker = 'self.addEventListener("fetch", () => undefined);\n';
let app: FastifyInstance;

beforeAll(async () => {
  mkdirSync(path.join(dir, 'assets'));
  writeFileSync(
    path.join(dir, 'index.html'),
    '<!doctype html><div id="root"></div><script type="module" src="/assets/app-1a2b3c4d.js"></script>',
  );
  writeFileSync(path.join(dir, 'assets', 'app-1a2b3c4d.js'), script);
  writeFileSync(path.join(dir, 'assets', 'app-1a2b3c4d.js.gz'), gzipSync(script));
  writeFileSync(path.join(dir, 'assets', 'notes.txt'), 'not an asset type');
  writeFileSync(path.join(dir, 'sw.js'), worker);
  app = Fastify();
  app.setErrorHandler(errorHandler(false));
  app.get('/api/me', async () => ({ me: true }));
  app.get('/health', async () => ({ status: 'pass' }));
  await webPages(app, { dir, base: '/', reserved: ['/api/'] });
});
afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('webPages at the root of the site', () => {
  it.each(['/', '/status', '/matches/42?tab=votes'])(
    '%s answers the page with the strict CSP',
    async (url) => {
      const res = await app.inject({ url });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers['content-security-policy']).toBe(STRICT_CSP);
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.body).toContain('<div id="root"></div>');
    },
  );

  it("leaves the app's own routes alone; an unknown API path or asset is a coded 404, never the page", async () => {
    expect((await app.inject({ url: '/api/me' })).json()).toEqual({ me: true });
    expect((await app.inject({ url: '/health' })).json()).toEqual({ status: 'pass' });
    for (const url of ['/api/nope', '/assets/nope.js', '/assets/notes.txt', '/assets/app-1a2b3c4d.js.gz']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(404);
      expect(res.json<{ error: { code: string } }>().error.code, url).toBe('BWK_ERR_HTTP_NOT_FOUND');
    }
    expect((await app.inject({ method: 'POST', url: '/somewhere' })).statusCode).toBe(404);
  });

  it('serves an asset immutable, gzipped to a client that accepts it, plain otherwise', async () => {
    const plain = await app.inject({ url: '/assets/app-1a2b3c4d.js' });
    expect(plain.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(plain.body).toBe(script);
    const gz = await app.inject({
      url: '/assets/app-1a2b3c4d.js',
      headers: { 'accept-encoding': 'br, gzip' },
    });
    expect(gz.headers['content-encoding']).toBe('gzip'); // no .br was built: the next one accepted
    expect(gz.rawPayload.equals(gzipSync(script))).toBe(true);
  });

  it("serves the build's service worker at /sw.js, revalidated at every check, with a policy of its own", async () => {
    const res = await app.inject({ url: '/sw.js' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.headers['content-security-policy']).toBe("default-src 'none'; connect-src 'self'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.body).toBe(worker);
  });

  it('answers a coded 404 at /sw.js when the build has no service worker, never the page', async () => {
    const bare = mkdtempSync(path.join(tmpdir(), 'bulwark-pages-'));
    writeFileSync(path.join(bare, 'index.html'), '<!doctype html><div id="root"></div>');
    const other = Fastify();
    other.setErrorHandler(errorHandler(false));
    await webPages(other, { dir: bare, base: '/app' });
    try {
      const res = await other.inject({ url: '/app/sw.js' });
      expect(res.statusCode).toBe(404);
      expect(res.json<{ error: { code: string } }>().error.code).toBe('BWK_ERR_HTTP_NOT_FOUND');
      expect((await other.inject({ url: '/app/deep/link' })).statusCode).toBe(200);
    } finally {
      await other.close();
      rmSync(bare, { recursive: true, force: true });
    }
  });

  it('answers 503 BWK_ERR_HTTP_PAGES_NOT_BUILT when the pages were not built, naming where', async () => {
    const bare = Fastify();
    bare.setErrorHandler(errorHandler(false));
    await webPages(bare, { dir: undefined, base: '/app' });
    for (const url of ['/app', '/app/deep/link']) {
      const res = await bare.inject({ url });
      expect(res.statusCode, url).toBe(503);
      expect(res.json<{ error: { code: string; message: string } }>().error).toMatchObject({
        code: 'BWK_ERR_HTTP_PAGES_NOT_BUILT',
        message: expect.stringContaining('/app') as unknown,
      });
    }
    await bare.close();
  });
});

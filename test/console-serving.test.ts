// The admin console's page and assets as the server serves them (no browser): the strict
// Content-Security-Policy on every page path, deep links, coded 404s for unknown API routes and
// assets, hashed assets immutable and precompressed, and a coded 503 when the console was not built.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync, brotliDecompressSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CSP, consoleDir, consoleLinks, registerConsole } from '../src/admin/console.js';
import { errorHandler } from '../src/http/error-handler.js';
import { testApp } from './helpers/app.js';

const dir = consoleDir();

let app: FastifyInstance;
beforeAll(async () => {
  if (dir === undefined)
    throw new Error('dist/console is missing: run `npm run build` (npm ci runs it) first');
  ({ app } = await testApp(() => undefined, { defaultMetrics: false, metricsHistory: false }));
});
afterAll(async () => app?.close());

describe('the console page', () => {
  it.each(['/admin', '/admin/', '/admin/flags', '/admin/flags/checkout.new?x=1', '/admin/queues/mail'])(
    '%s answers the page with the strict CSP and no caching',
    async (url) => {
      const res = await app.inject({ url });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.body).toContain('<div id="app"></div>');
    },
  );

  it('the CSP allows no inline script or style, no eval, no framing; the page has none inline', async () => {
    const csp: Record<string, string> = Object.fromEntries(
      CONSOLE_CSP.split('; ').map((d) => [d.split(' ')[0]!, d.split(' ').slice(1).join(' ')]),
    );
    expect(csp).toMatchObject({
      'default-src': "'none'",
      'script-src': "'self'",
      'style-src': "'self'",
      'frame-ancestors': "'none'",
    });
    expect(CONSOLE_CSP).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    const html = (await app.inject({ url: '/admin' })).body;
    // Every script is a file of the build; no inline script, style element or style attribute.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|style=/);
  });

  it('an unknown API route or asset is a coded 404, never the page', async () => {
    for (const url of ['/admin/api/nope', '/admin/api/', '/admin/assets/nope.js']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(404);
      expect(res.json<{ error: { code: string } }>().error.code, url).toBe('BWK_ERR_HTTP_NOT_FOUND');
    }
  });

  it('the page asks for no key: the data comes from the admin API, which refuses without one', async () => {
    expect((await app.inject({ url: '/admin/flags' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/admin/api/flags' })).statusCode).toBeGreaterThanOrEqual(401);
  });
});

describe('the console assets', () => {
  const assets = () => {
    const html = readFileSync(path.join(dir!, 'index.html'), 'utf8');
    return [...html.matchAll(/(?:src|href)="(\/admin\/assets\/[^"]+)"/g)].map((m) => m[1]!);
  };

  it('the page names its script and style sheet by content hash', () => {
    expect(assets().some((a) => /\/index-[\w-]{8,}\.js$/.test(a))).toBe(true);
    expect(assets().some((a) => /\/index-[\w-]{8,}\.css$/.test(a))).toBe(true);
  });

  it('are immutable for a year and served compressed (Brotli, gzip) with the same bytes', async () => {
    for (const asset of assets()) {
      const file = readFileSync(path.join(dir!, 'assets', path.basename(asset)));
      const plain = await app.inject({ url: asset });
      expect(plain.statusCode).toBe(200);
      expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(plain.headers['x-content-type-options']).toBe('nosniff');
      expect(plain.rawPayload.equals(file)).toBe(true);
      const br = await app.inject({ url: asset, headers: { 'accept-encoding': 'br' } });
      expect(br.headers['content-encoding']).toBe('br');
      expect(brotliDecompressSync(br.rawPayload).equals(file)).toBe(true);
      const gz = await app.inject({ url: asset, headers: { 'accept-encoding': 'gzip' } });
      expect(gz.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(gz.rawPayload).equals(file)).toBe(true);
    }
  });

  it("honours the client's preference and refusals of an encoding; serves nothing outside the build", async () => {
    const asset = assets().find((a) => a.endsWith('.js'))!;
    const encodingFor = async (accept: string) =>
      (await app.inject({ url: asset, headers: { 'accept-encoding': accept } })).headers['content-encoding'];
    expect(await encodingFor('br;q=0, gzip')).toBe('gzip');
    expect(await encodingFor('gzip;q=0.5, br')).toBe('br');
    expect(await encodingFor('identity')).toBeUndefined();
    for (const url of [
      '/admin/assets/..%2Findex.html',
      '/admin/assets/%2e%2e/index.html',
      `${asset}.br`,
      '/admin/assets/',
      '/admin/assets/../../package.json',
    ]) {
      const res = await app.inject({ url });
      // A coded 404, or (a path that is no asset) the console's page itself: never another file.
      if (res.statusCode === 200) expect(res.headers['content-security-policy'], url).toBe(CONSOLE_CSP);
      else expect(res.json<{ error: { code: string } }>().error.code, url).toBe('BWK_ERR_HTTP_NOT_FOUND');
      expect(res.body, url).not.toContain('"name": "bulwark"');
    }
  });

  it('the JavaScript of the page is within the budget of 100 KB gzipped', () => {
    const total = assets()
      .filter((a) => a.endsWith('.js'))
      .reduce((sum, a) => sum + readFileSync(path.join(dir!, 'assets', `${path.basename(a)}.gz`)).length, 0);
    expect(total).toBeGreaterThan(0);
    expect(total).toBeLessThanOrEqual(100 * 1024);
  });
});

describe('a package without the built console', () => {
  it('answers its paths 503 BWK_ERR_ADMIN_CONSOLE_NOT_BUILT', async () => {
    const bare = Fastify();
    bare.setErrorHandler(errorHandler(false));
    await registerConsole(bare, { dir: undefined });
    for (const url of ['/admin', '/admin/flags']) {
      const res = await bare.inject({ url });
      expect(res.statusCode).toBe(503);
      expect(res.json<{ error: { code: string } }>().error.code).toBe('BWK_ERR_ADMIN_CONSOLE_NOT_BUILT');
    }
    await bare.close();
  });
});

describe("the console's links to the app's own pages", () => {
  it('are checked at registration: a name, and a path on this site (never another site)', () => {
    expect(consoleLinks([{ name: 'Queue dashboard', href: '/dashboard' }])).toEqual([
      { name: 'Queue dashboard', href: '/dashboard' },
    ]);
    for (const href of [
      'https://evil.example/',
      '//evil.example/x',
      '/\\evil.example',
      '/\t/evil.example',
      '/\n/evil.example',
      'dashboard',
      '',
    ])
      expect(() => consoleLinks([{ name: 'x', href }]), href).toThrow(/^console\.links\[0\]\.href: /);
    expect(() =>
      consoleLinks([
        { name: 'ok', href: '/a' },
        { name: ' ', href: '/b' },
      ]),
    ).toThrow(/^console\.links\[1\]\.name: /);
  });

  it('are listed to a signed-in console only (none by default)', async () => {
    const { app: withKey } = await testApp(() => undefined, {
      env: { BULWARK_ADMIN_KEY: 'console-links-key-0123456789' },
      defaultMetrics: false,
      metricsHistory: false,
    });
    try {
      const url = '/admin/api/console/links';
      expect((await withKey.inject({ url })).statusCode).toBe(401);
      const listed = await withKey.inject({
        url,
        headers: { authorization: 'Bearer console-links-key-0123456789' },
      });
      expect([listed.statusCode, listed.json()]).toEqual([200, { links: [] }]);
    } finally {
      await withKey.close();
    }
  });
});

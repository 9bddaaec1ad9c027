import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Negotiator } from '@fastify/accept-negotiator';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { bulwarkError } from '../errors/index.js';

/**
 * The console's Content-Security-Policy: its own scripts and styles only (no inline script or
 * style, no eval), data and the live stream from its own origin, never framed.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers of the console's page, on top of the CSP. */
const PAGE_HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  // The page names the hashed assets of the build it came from: always ask again.
  'cache-control': 'no-cache',
} as const;

/** Headers of every asset: each name carries its content's hash, so a changed file is a new name. */
const ASSET_HEADERS = {
  'cache-control': 'public, max-age=31536000, immutable',
  'x-content-type-options': 'nosniff',
  'cross-origin-resource-policy': 'same-origin',
  vary: 'accept-encoding',
} as const;

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

/** A file of the build and its precompressed variants. */
interface Asset {
  file: string;
  type: string;
  encoded: Partial<Record<'br' | 'gzip', string>>;
}

/** The files `vite build` wrote to `dir` (read once, at start), by name. */
function builtAssets(dir: string): Map<string, Asset> {
  const names = new Set(readdirSync(dir));
  const assets = new Map<string, Asset>();
  for (const name of names) {
    const type = TYPES[path.extname(name)];
    if (type === undefined) continue; // .br and .gz are variants, not assets of their own
    const encoded: Asset['encoded'] = {};
    if (names.has(`${name}.br`)) encoded.br = path.join(dir, `${name}.br`);
    if (names.has(`${name}.gz`)) encoded.gzip = path.join(dir, `${name}.gz`);
    assets.set(name, { file: path.join(dir, name), type, encoded });
  }
  return assets;
}

/**
 * Where `vite build` put the console: dist/console of the package, found from this module whether
 * it runs from dist/ (compiled or bundled) or from src/ (tests, tsx).
 */
export function consoleDir(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return [path.resolve(here, '../console'), path.resolve(here, '../../dist/console')].find((dir) =>
    existsSync(path.join(dir, 'index.html')),
  );
}

/**
 * Serves the admin console: its page at `/admin` and every path under it (the console routes in
 * the browser, so each page is a deep link), and its hashed assets under `/admin/assets/`
 * (immutable for a year, Brotli or gzip when the client accepts it, precompressed at build time;
 * served from the list of files the build wrote, without a static file server to load at start).
 * The data comes from the admin API (`/admin/api/`), which checks the caller; the page and its
 * assets hold no data and no secret. When the console was not built, its paths answer 503
 * `BWK_ERR_ADMIN_CONSOLE_NOT_BUILT`. `dir`: the built console (undefined: not built).
 */
export async function registerConsole(
  app: FastifyInstance,
  { dir }: { dir: string | undefined } = { dir: consoleDir() },
): Promise<void> {
  const page = dir === undefined ? undefined : readFileSync(path.join(dir, 'index.html'));
  const sendPage = (reply: FastifyReply) => {
    if (page === undefined) throw bulwarkError('BWK_ERR_ADMIN_CONSOLE_NOT_BUILT', {});
    return reply.headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(page);
  };
  const assets = dir === undefined ? new Map<string, Asset>() : builtAssets(path.join(dir, 'assets'));
  const encodings = new Negotiator({ supportedValues: ['br', 'gzip'] });
  app.get<{ Params: { file: string } }>(
    '/admin/assets/:file',
    { logLevel: 'warn', schema: { hide: true } },
    async (request, reply) => {
      // Only the files the build wrote are served, by exact name: no path is ever built from the URL.
      const asset = assets.get(request.params.file);
      if (asset === undefined) {
        throw bulwarkError('BWK_ERR_HTTP_NOT_FOUND', { method: request.method, url: request.url });
      }
      const accepted = request.headers['accept-encoding'];
      const encoding = typeof accepted === 'string' ? encodings.negotiate(accepted) : null;
      const variant = encoding === null ? undefined : asset.encoded[encoding];
      reply.headers({ ...ASSET_HEADERS, 'content-type': asset.type });
      if (variant !== undefined && encoding !== null) reply.header('content-encoding', encoding);
      return reply.send(await readFile(variant ?? asset.file));
    },
  );
  app.get('/admin', { logLevel: 'warn', schema: { hide: true } }, async (_request, reply) => sendPage(reply));
  app.get('/admin/*', { logLevel: 'warn', schema: { hide: true } }, async (request, reply) => {
    const url = request.url.split('?')[0] ?? '';
    // An unknown API route or asset is a 404 with the coded body, never the page.
    if (url.startsWith('/admin/api/') || url.startsWith('/admin/assets/')) {
      throw bulwarkError('BWK_ERR_HTTP_NOT_FOUND', { method: request.method, url });
    }
    return sendPage(reply);
  });
}

// A built web app (what `vite build` writes: index.html and hashed assets) served safely: the page
// with a strict Content-Security-Policy at every path under its base (the app routes in the
// browser, so each page is a deep link), the assets immutable and precompressed, and never the page
// where an API or an asset was asked for. The admin console is served by it, and so can an app's
// own pages be (`bulwark/fastify`).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Negotiator } from '@fastify/accept-negotiator';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { bulwarkError } from '../errors/index.js';

/**
 * The pages' default Content-Security-Policy: their own scripts and styles only (no inline script
 * or style, no eval), data and live streams from their own origin, never framed.
 */
export const STRICT_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "worker-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers of the page, on top of the CSP. */
const PAGE_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  // The page names the hashed assets of the build it came from: always ask again.
  'cache-control': 'no-cache',
} as const;

/**
 * Headers of the service worker (`sw.js`): asked again at each check (a worker held by a cache would
 * keep every page on the old build), with a policy of its own that lets it fetch its own origin only.
 */
const WORKER_HEADERS = {
  'content-type': 'text/javascript; charset=utf-8',
  'cache-control': 'no-cache',
  'content-security-policy': "default-src 'none'; connect-src 'self'",
  'x-content-type-options': 'nosniff',
  'cross-origin-resource-policy': 'same-origin',
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
  '.webmanifest': 'application/manifest+json',
};

/** A file of the build and its precompressed variants. */
interface Asset {
  file: string;
  type: string;
  encoded: Partial<Record<'br' | 'gzip', string>>;
}

/** The files `vite build` wrote to `dir` (read once, at start), by name; none when it is missing. */
function builtAssets(dir: string): Map<string, Asset> {
  let names: Set<string>;
  try {
    names = new Set(readdirSync(dir));
  } catch {
    return new Map();
  }
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

/** Options of {@link webPages}. */
export interface WebPagesOptions {
  /** What `vite build` wrote: `index.html` and `assets/`. Undefined: not built. */
  dir: string | undefined;
  /** The path the pages live under: `/` or e.g. `/admin` (no trailing slash). */
  base: string;
  /**
   * Paths under `base` that are never a page (an API's prefix, e.g. `/api/`): an unknown one there
   * is a coded 404. `<base>/assets/` always is.
   */
  reserved?: readonly string[];
  /** The page's Content-Security-Policy (default {@link STRICT_CSP}). */
  csp?: string;
  /** What a page path answers when `dir` is undefined (default 503 `BWK_ERR_HTTP_PAGES_NOT_BUILT`). */
  notBuilt?: () => Error;
}

/**
 * Serves a built web app: its page at `base` and every GET path under it but the reserved ones,
 * with {@link STRICT_CSP} (or `csp`), never cached and never framed; its hashed assets under
 * `<base>/assets/` by exact name (no path is ever built from the URL), immutable for a year, Brotli
 * or gzip when the client accepts it (precompressed at build time); its service worker, when the
 * build has a `sw.js`, at `<base>/sw.js` (so its scope is the pages'), revalidated at every check
 * (`no-cache`). The page and its assets hold no data and no secret; the data comes from the app's
 * API, which checks the caller. The routes are hidden from the OpenAPI document and logged at warn
 * only.
 */
export async function webPages(app: FastifyInstance, options: WebPagesOptions): Promise<void> {
  const { dir, base } = options;
  const prefix = base === '/' ? '/' : `${base}/`;
  // `sw.js` is never the page either: a browser that registered it would refuse an HTML answer.
  const reserved = [`${prefix}assets/`, `${prefix}sw.js`, ...(options.reserved ?? [])];
  const headers = { ...PAGE_HEADERS, 'content-security-policy': options.csp ?? STRICT_CSP };
  const notBuilt = options.notBuilt ?? (() => bulwarkError('BWK_ERR_HTTP_PAGES_NOT_BUILT', { base }));
  const page = dir === undefined ? undefined : readFileSync(path.join(dir, 'index.html'));
  const sendPage = (reply: FastifyReply) => {
    if (page === undefined) throw notBuilt();
    return reply.headers(headers).type('text/html; charset=utf-8').send(page);
  };
  const assets = dir === undefined ? new Map<string, Asset>() : builtAssets(path.join(dir, 'assets'));
  // Negotiated among the variants an asset has (a client that prefers Brotli gets gzip when only
  // gzip was built), one negotiator per set of variants.
  const negotiators = new Map<string, Negotiator>();
  const negotiatorFor = (asset: Asset) => {
    const offered = (['br', 'gzip'] as const).filter((e) => asset.encoded[e] !== undefined);
    const key = offered.join(',');
    let negotiator = negotiators.get(key);
    if (negotiator === undefined)
      negotiators.set(key, (negotiator = new Negotiator({ supportedValues: offered })));
    return negotiator;
  };
  const route = { logLevel: 'warn' as const, schema: { hide: true } };
  app.get<{ Params: { file: string } }>(`${prefix}assets/:file`, route, async (request, reply) => {
    const asset = assets.get(request.params.file);
    if (asset === undefined) {
      throw bulwarkError('BWK_ERR_HTTP_NOT_FOUND', { method: request.method, url: request.url });
    }
    const accepted = request.headers['accept-encoding'];
    const encoding =
      typeof accepted === 'string'
        ? (negotiatorFor(asset).negotiate(accepted) as 'br' | 'gzip' | null)
        : null;
    const variant = encoding === null ? undefined : asset.encoded[encoding];
    reply.headers({ ...ASSET_HEADERS, 'content-type': asset.type });
    if (variant !== undefined && encoding !== null) reply.header('content-encoding', encoding);
    return reply.send(await readFile(variant ?? asset.file));
  });
  const workerFile = dir === undefined ? undefined : path.join(dir, 'sw.js');
  const worker = workerFile !== undefined && existsSync(workerFile) ? readFileSync(workerFile) : undefined;
  if (worker !== undefined)
    app.get(`${prefix}sw.js`, route, async (_request, reply) => reply.headers(WORKER_HEADERS).send(worker));
  if (base !== '/') app.get(base, route, async (_request, reply) => sendPage(reply));
  app.get(`${prefix}*`, route, async (request, reply) => {
    const url = request.url.split('?')[0] ?? '';
    // An unknown API route or asset is a 404 with the coded body, never the page.
    if (reserved.some((path) => url.startsWith(path))) {
      throw bulwarkError('BWK_ERR_HTTP_NOT_FOUND', { method: request.method, url });
    }
    return sendPage(reply);
  });
}

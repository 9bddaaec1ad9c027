import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { bulwarkError } from '../errors/index.js';
import { STRICT_CSP, webPages } from '../http/web-pages.js';

/** Options of the console (the plugin option `console`). */
export interface ConsoleOptions {
  /**
   * The app's own pages, shown after the console's in its navigation: `{ name, href }`, `href` a
   * path on this site (`/dashboard`), opened as a page of its own.
   */
  links?: readonly ConsoleLink[];
}

export interface ConsoleLink {
  name: string;
  href: string;
}

export const ConsoleLinksBody = Type.Object({
  links: Type.Array(Type.Object({ name: Type.String(), href: Type.String() })),
});

/**
 * Whether `href` is a path on this site as a browser resolves it (it drops tabs and newlines, so
 * "/\t/evil.example" would be "//evil.example", another site).
 */
function onThisSite(href: string): boolean {
  const here = 'http://this.invalid';
  return href.startsWith('/') && new URL(href, here).origin === here;
}

/** The links checked: each a name and a path on this site (never another site's address). */
export function consoleLinks(links: readonly ConsoleLink[] = []): ConsoleLink[] {
  return links.map((link, i) => {
    if (typeof link.name !== 'string' || link.name.trim() === '')
      throw new TypeError(`console.links[${i}].name: give the link's name`);
    if (typeof link.href !== 'string' || !onThisSite(link.href))
      throw new TypeError(
        `console.links[${i}].href: a path on this site, starting with one / (got ${JSON.stringify(link.href)})`,
      );
    return { name: link.name, href: link.href };
  });
}

/** The console's Content-Security-Policy: {@link STRICT_CSP}. */
export const CONSOLE_CSP = STRICT_CSP;

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
 * Serves the admin console ({@link webPages}): its page at `/admin` and every path under it, its
 * hashed assets under `/admin/assets/`. The data comes from the admin API (`/admin/api/`, never the
 * page), which checks the caller. When the console was not built, its paths answer 503
 * `BWK_ERR_ADMIN_CONSOLE_NOT_BUILT`. `dir`: the built console (undefined: not built).
 */
export async function registerConsole(
  app: FastifyInstance,
  { dir }: { dir: string | undefined } = { dir: consoleDir() },
): Promise<void> {
  await webPages(app, {
    dir,
    base: '/admin',
    reserved: ['/admin/api/'],
    csp: CONSOLE_CSP,
    notBuilt: () => bulwarkError('BWK_ERR_ADMIN_CONSOLE_NOT_BUILT', {}),
  });
}

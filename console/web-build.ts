// The Vite build shared by the web apps (the console's, Spin's pages): Preact, every asset named by
// its content hash (served immutable) and written precompressed (.br, .gz) beside itself, which
// webPages() serves to clients that accept them; nothing inlined (the CSP allows no data: script);
// optionally a service worker, built last with the list of the files it is to keep offline.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import preact from '@preact/preset-vite';
import { buildSync } from 'esbuild';
import type { Plugin, UserConfig } from 'vite';

/** Options of {@link webBuild}. */
export interface WebBuildOptions {
  /** A service worker's entry (see {@link writeServiceWorker}); none by default. */
  serviceWorker?: string;
}

/** The build of the app whose index.html is in `root`, served under `base`, written to `outDir`. */
export function webBuild(
  root: string,
  base: string,
  outDir: string,
  options: WebBuildOptions = {},
): UserConfig {
  const worker = options.serviceWorker;
  return {
    root,
    base,
    plugins: [
      preact(),
      precompress(outDir),
      ...(worker === undefined ? [] : [serviceWorker(worker, outDir)]),
    ],
    logLevel: 'warn',
    build: {
      outDir,
      emptyOutDir: true,
      assetsDir: 'assets',
      // No inline assets: the Content-Security-Policy allows no data: scripts or styles.
      assetsInlineLimit: 0,
      modulePreload: { polyfill: false },
      sourcemap: true,
      target: 'es2022',
      reportCompressedSize: false,
    },
  };
}

/** Writes `<file>.br` and `<file>.gz` beside every script, style sheet and SVG of the build. */
function precompress(outDir: string): Plugin {
  return {
    name: 'bulwark-precompress',
    apply: 'build',
    closeBundle() {
      const assets = path.join(outDir, 'assets');
      for (const name of readdirSync(assets).filter((n) => /\.(js|css|svg)$/.test(n))) {
        const file = path.join(assets, name);
        const data = readFileSync(file);
        writeFileSync(
          `${file}.br`,
          brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
        );
        writeFileSync(`${file}.gz`, gzipSync(data, { level: 9 }));
      }
    },
  };
}

/** What a service worker built by {@link writeServiceWorker} is told of its build, as `__BUILD__`. */
export interface BuildManifest {
  /** Changes with any file of the build: the worker's caches are named by it. */
  version: string;
  /** The page (`./`) and its scripts, style sheets, images and fonts, relative to the worker's scope. */
  files: string[];
}

/**
 * Builds the service worker `entry` (TypeScript, self-contained) into `<outDir>/sw.js`, one classic
 * script at a fixed name (a worker's URL is its identity: a hashed name would register a new worker
 * with each build), with the manifest of what is in `outDir` as `__BUILD__`. Run after the rest of
 * the build is written; returns the manifest.
 */
export function writeServiceWorker(entry: string, outDir: string): BuildManifest {
  const assets = readdirSync(path.join(outDir, 'assets'))
    .filter((name) => /\.(js|css|svg|png|woff2)$/.test(name))
    .sort();
  // Asset names carry their content's hash, so their names and the page are the whole build.
  const version = createHash('sha256')
    .update(readFileSync(path.join(outDir, 'index.html')))
    .update(assets.join('\n'))
    .digest('hex')
    .slice(0, 12);
  const manifest: BuildManifest = { version, files: ['./', ...assets.map((name) => `assets/${name}`)] };
  buildSync({
    entryPoints: [entry],
    outfile: path.join(outDir, 'sw.js'),
    bundle: true,
    minify: true,
    format: 'iife',
    target: 'es2022',
    define: { __BUILD__: JSON.stringify(manifest) },
    logLevel: 'warning',
  });
  return manifest;
}

/** Writes the service worker once the rest of the build is written. */
function serviceWorker(entry: string, outDir: string): Plugin {
  return {
    name: 'bulwark-service-worker',
    apply: 'build',
    closeBundle() {
      writeServiceWorker(entry, outDir);
    },
  };
}

// The Vite build shared by the web apps (the console's, Spin's pages): Preact, every asset named by
// its content hash (served immutable) and written precompressed (.br, .gz) beside itself, which
// webPages() serves to clients that accept them; nothing inlined (the CSP allows no data: script).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import preact from '@preact/preset-vite';
import type { Plugin, UserConfig } from 'vite';

/** The build of the app whose index.html is in `root`, served under `base`, written to `outDir`. */
export function webBuild(root: string, base: string, outDir: string): UserConfig {
  return {
    root,
    base,
    plugins: [preact(), precompress(outDir)],
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

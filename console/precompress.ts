// A Vite plugin shared by the web builds (the console's, Spin's): writes `<file>.br` and `<file>.gz`
// beside every script, style sheet and SVG of `<outDir>/assets`, which webPages() serves to clients
// that accept them.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import type { Plugin } from 'vite';

/** Writes `<file>.br` and `<file>.gz` beside every script, style sheet and SVG of the build. */
export function precompress(outDir: string): Plugin {
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

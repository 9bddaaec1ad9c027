// Spin's pages: `vite build --config examples/spin/web/vite.config.ts` (part of `npm run build`).
// Output: dist/spin/web/index.html and dist/spin/web/assets/*, named by content hash and written
// precompressed beside themselves; the server serves them with Bulwark's webPages().
import path from 'node:path';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';
import { precompress } from '../../../console/precompress.js';

const outDir = path.resolve(import.meta.dirname, '../../../dist/spin/web');

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
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
});

// The admin console's build: `vite build --config console/vite.config.ts` (part of `npm run build`,
// so `npm install` builds it). Output: dist/console/index.html and dist/console/assets/*, every
// asset named by its content hash (served immutable) and written precompressed (.br, .gz) beside
// itself, which @fastify/static serves to clients that accept them.
import path from 'node:path';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';
import { precompress } from './precompress.js';

const outDir = path.resolve(import.meta.dirname, '../dist/console');

export default defineConfig({
  root: import.meta.dirname,
  base: '/admin/',
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

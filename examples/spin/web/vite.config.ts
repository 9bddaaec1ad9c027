// Spin's pages: `vite build --config examples/spin/web/vite.config.ts` (part of `npm run build`).
// Output: dist/spin/web/index.html, dist/spin/web/assets/* (hashed names, precompressed) and the
// service worker dist/spin/web/sw.js (from sw/sw.ts), which the server serves with Bulwark's
// webPages().
import path from 'node:path';
import { defineConfig } from 'vite';
import { webBuild } from '../../../console/web-build.js';

export default defineConfig(
  webBuild(import.meta.dirname, '/', path.resolve(import.meta.dirname, '../../../dist/spin/web'), {
    serviceWorker: path.resolve(import.meta.dirname, 'sw/sw.ts'),
  }),
);

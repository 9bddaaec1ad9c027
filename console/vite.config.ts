// The admin console's build: `vite build --config console/vite.config.ts` (part of `npm run build`,
// so `npm install` builds it). Output: dist/console/index.html and dist/console/assets/*
// (web-build.ts: hashed names, precompressed).
import path from 'node:path';
import { defineConfig } from 'vite';
import { webBuild } from './web-build.js';

export default defineConfig(
  webBuild(import.meta.dirname, '/admin/', path.resolve(import.meta.dirname, '../dist/console')),
);

import { serveApp } from '../http/serve.js';
import { buildApp } from './build.js';

// The demo app on the embedded defaults: Bulwark's own routes and two demo routes (build.ts). No
// top-level await: it runs as a CommonJS bundle (dist/app/server.cjs, src/code-cache.ts).
void serveApp(buildApp, { name: 'bulwark demo', links: { app: '/' } });

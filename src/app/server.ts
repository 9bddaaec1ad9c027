import { serveApp } from '../http/serve.js';
import { buildApp } from './build.js';

// The demo app on the embedded defaults: Bulwark's own routes and two demo routes (build.ts).
await serveApp(buildApp, { name: 'bulwark demo', links: { app: '/' } });

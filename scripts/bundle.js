// Bundles the programs Bulwark ships, the `bulwark` command (dist/cli/main.cjs, its help
// dist/cli/main.js), the demo app
// (dist/app/server.js) and Spin, the reference app `npm start` runs (dist/spin/server.js), over tsc's
// output of the same names, after `tsc` has built the library.
// `node scripts/bundle.js [--outdir <dir>]` (default dist).
//
// Why: Node loads modules one file at a time, and what the two programs load is ~1,000 ES modules
// (TypeBox ~680, Kysely ~260) and ~900 CommonJS files: most of the demo app's start-up (0.51 s
// against bare Fastify's 0.10 s, docs/benchmarks.md) and of every CLI command. Bundled, they load
// a few files: the two servers in chunks shared between them (dist/chunks/), the lazily loaded parts
// in chunks of their own; the command in one file it runs with V8's code cache. Left as imports of node_modules: native modules, the optional
// dependencies (loaded only when configured), and packages that read their own files at run time.
// The library entry points (dist/index.js, ...) are not bundled: an app that imports Bulwark shares
// its dependencies with its own code.
/* global process */
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

/**
 * Packages loaded from node_modules at run time; every other one is bundled (pino too: Bulwark writes
 * its lines itself and starts no pino transport, the one feature that loads pino's files by path).
 */
const EXTERNAL = [
  'better-sqlite3', // native
  'ioredis', // optional: only with REDIS_URL
  'bullmq',
  'pg', // optional: only with DATABASE_URL
  'nodemailer', // optional: only with an email receiver
  '@fastify/swagger-ui', // serves its own files
  '@fastify/static',
];

const at = process.argv.indexOf('--outdir');
const outdir = at === -1 ? 'dist' : process.argv[at + 1];
const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
// Chunk names carry a content hash: drop the last build's.
rmSync(path.join(outdir, 'chunks'), { recursive: true, force: true });

/** What every bundle shares: packages left to node_modules (EXTERNAL), the version written in. */
const bulwarkPlugin = {
  name: 'bulwark',
  setup(bundle) {
    bundle.onResolve({ filter: /^[^./]/ }, (args) => {
      const name = args.path.startsWith('@') ? args.path.split('/', 2).join('/') : args.path.split('/')[0];
      return args.path.startsWith('node:') || EXTERNAL.includes(name)
        ? { path: args.path, external: true }
        : undefined;
    });
    // src/version.ts reads ../package.json next to itself, which a chunk has no longer.
    bundle.onLoad({ filter: /[/\\]src[/\\]version\.ts$/ }, () => ({
      contents: `export const VERSION = ${JSON.stringify(version)};`,
      loader: 'ts',
    }));
  },
};
const common = {
  alias: { 'bulwark/fastify': './src/fastify.ts', bulwark: './src/index.ts' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  allowOverwrite: true,
  logLevel: 'warning',
  plugins: [bulwarkPlugin],
};

await build({
  ...common,
  entryPoints: {
    // The command's help (bin/bulwark.js): only the code of the help it prints loads.
    'cli/main': 'src/cli/main.ts',
    'app/server': 'src/app/server.ts',
    // Spin, the reference app (what `npm start` runs): it imports Bulwark by its package name, bundled
    // from the same sources as the rest, so the programs share their chunks.
    'spin/server': 'examples/spin/src/server.ts',
  },
  outdir,
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  format: 'esm',
  // Bundled CommonJS calls require() for Node's modules; an ES module has none of its own.
  banner: {
    js: "import { createRequire as bulwarkCreateRequire } from 'node:module'; const require = bulwarkCreateRequire(import.meta.url);",
  },
});

// The `bulwark` command that does some work: one CommonJS file, which bin/bulwark.js runs with V8's
// code cache (src/cli/code-cache.ts; Node 20 caches no ES module's code). Its lazily loaded commands
// are in it, evaluated only when run; `import.meta.url` is the file's own URL.
await build({
  ...common,
  entryPoints: { 'cli/main': 'src/cli/main.ts' },
  outdir,
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  minify: true,
  define: { 'import.meta.url': 'bulwarkFileUrl' },
  banner: { js: "const bulwarkFileUrl = require('node:url').pathToFileURL(__filename).href;" },
});

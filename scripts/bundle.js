// Bundles the programs Bulwark ships, the `bulwark` command (dist/cli/main.cjs, its help
// dist/cli/main.js), the demo app (dist/app/server.cjs) and Spin, the reference app `npm start` runs
// (dist/spin/server.cjs), after `tsc` has built the library; `dist/app/server.js` and
// `dist/spin/server.js` become the two lines that run a server's bundle.
// `node scripts/bundle.js [--outdir <dir>]` (default dist).
//
// Why: Node loads modules one file at a time, and what the programs load is ~1,000 ES modules
// (TypeBox ~680, Kysely ~260) and ~900 CommonJS files: most of the demo app's start-up (0.51 s
// against bare Fastify's 0.10 s, docs/benchmarks.md) and of every CLI command. Bundled, each loads
// one file, which V8 compiles once and then reads from its code cache (src/code-cache.ts). Left as
// imports of node_modules: native modules, the optional dependencies (loaded only when configured),
// and packages that read their own files at run time. The library entry points (dist/index.js, ...)
// are not bundled: an app that imports Bulwark shares its dependencies with its own code.
/* global process */
import { build } from 'esbuild';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
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
    // prom-client without the parts its index loads that Bulwark never uses (see the file).
    bundle.onResolve({ filter: /^prom-client$/ }, () => ({
      path: path.resolve('scripts/prom-client-lean.cjs'),
    }));
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

// The command's help (bin/bulwark.js): only the code of the help it prints loads.
await build({
  ...common,
  entryPoints: { 'cli/main': 'src/cli/main.ts' },
  outdir,
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  format: 'esm',
  // Bundled CommonJS calls require() for Node's modules; an ES module has none of its own.
  banner: {
    js: "import { createRequire as bulwarkCreateRequire } from 'node:module'; const require = bulwarkCreateRequire(import.meta.url);",
  },
});

// The programs, each one CommonJS file run with V8's code cache (src/code-cache.ts; Node 20 caches
// no ES module's code): the `bulwark` command that does some work (bin/bulwark.js), the demo app
// and Spin, the reference app (what `npm start` runs; it imports Bulwark by its package name,
// bundled from the same sources). Their lazily loaded parts are in them, evaluated only when used;
// `import.meta.url` is the file's own URL.
await build({
  ...common,
  entryPoints: {
    'cli/main': 'src/cli/main.ts',
    'app/server': 'src/app/server.ts',
    'spin/server': 'examples/spin/src/server.ts',
  },
  outdir,
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  minify: true,
  define: { 'import.meta.url': 'bulwarkFileUrl' },
  banner: { js: "const bulwarkFileUrl = require('node:url').pathToFileURL(__filename).href;" },
});

// `node dist/app/server.js` and `node dist/spin/server.js` (how they are started) run their bundle
// with the code cache.
for (const program of ['app/server', 'spin/server']) {
  rmSync(path.join(outdir, `${program}.js.map`), { force: true });
  writeFileSync(
    path.join(outdir, `${program}.js`),
    `// ${program}.cjs with V8's code cache (written by scripts/bundle.js).
import { fileURLToPath } from 'node:url';
import { runCached } from '../code-cache.js';

runCached(fileURLToPath(new URL('./server.cjs', import.meta.url)));
`,
  );
}

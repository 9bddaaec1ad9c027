import { execFile, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  name: string;
  type: string;
  version: string;
  bin: Record<string, string>;
  exports: Record<string, string | { types: string; default: string }>;
};

// The package as a user installs it, built from the sources as they are now: `npm test` does not
// rebuild the repository's dist/, which may be older than src/. The build skips type checking
// (`npm run typecheck` does that) and goes to a temp dir, so it takes seconds and touches nothing.
let dir: string;
let packageDir: string;
let consumerDir: string;
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bulwark-pkg-'));
  packageDir = path.join(dir, 'package');
  consumerDir = path.join(dir, 'consumer');
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  await run(
    process.execPath,
    [tsc, '-p', 'tsconfig.build.json', '--noCheck', '--outDir', path.join(packageDir, 'dist')],
    { cwd: root },
  );
  // The two programs, bundled over tsc's output as `npm run build` does.
  await run(process.execPath, ['scripts/bundle.js', '--outdir', path.join(packageDir, 'dist')], {
    cwd: root,
  });
  cpSync(path.join(root, 'package.json'), path.join(packageDir, 'package.json'));
  cpSync(path.join(root, 'bin'), path.join(packageDir, 'bin'), { recursive: true });
  // The package's own dependencies, as npm would have installed them next to it.
  symlinkSync(path.join(root, 'node_modules'), path.join(packageDir, 'node_modules'), 'dir');
  mkdirSync(path.join(consumerDir, 'node_modules'), { recursive: true });
  symlinkSync(packageDir, path.join(consumerDir, 'node_modules', pkg.name), 'dir');
}, 180_000);
afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** Runs an ES module script with Node in a project that depends on the package; resolves with its stdout. */
async function inConsumer(script: string): Promise<string> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: consumerDir });
  return stdout;
}

describe('package entry points (a fresh build)', () => {
  it('every "exports" entry points at built files', () => {
    const files = Object.entries(pkg.exports).flatMap(([entry, target]) =>
      typeof target === 'string'
        ? [[entry, target]]
        : [
            [entry, target.types],
            [entry, target.default],
          ],
    );
    expect(files.filter(([, file]) => !existsSync(path.join(packageDir, file!)))).toEqual([]);
  });

  it('bulwark, bulwark/fastify and bulwark/errors resolve through "exports" in plain Node', async () => {
    const out = await inConsumer(`
      const main = await import('bulwark');
      const fastify = await import('bulwark/fastify');
      const errors = await import('bulwark/errors');
      console.log(JSON.stringify({
        main: [typeof main.createBulwark, typeof main.isBulwarkError, main.VERSION],
        fastify: [typeof fastify.default, typeof fastify.fastifyOptions],
        notFound: errors.catalogue.BWK_ERR_HTTP_NOT_FOUND?.status,
        resolved: import.meta.resolve('bulwark'),
      }));
    `);
    const result = JSON.parse(out) as Record<string, unknown>;
    expect(result).toMatchObject({
      main: ['function', 'function', pkg.version],
      fastify: ['function', 'function'],
      notFound: 404,
    });
    // Through the consumer's node_modules to the fresh build, not the repository's dist/.
    expect(fileURLToPath(String(result['resolved']))).toBe(path.join(packageDir, 'dist', 'index.js'));
  });

  it('declares the bulwark bin with a node shebang, and the bin runs the built CLI', async () => {
    expect(pkg.type).toBe('module');
    const bin = path.join(packageDir, pkg.bin['bulwark']!);
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node')).toBe(true);
    const { stdout } = await run(process.execPath, [bin, '--version'], { cwd: consumerDir });
    expect(stdout.trim()).toBe(pkg.version);
  });
});

describe('the bundled programs (the CLI and the demo app)', () => {
  const KEY = 'package-test-admin-key-0123456789';
  const dataDir = () => mkdtempSync(path.join(dir, 'data-'));

  it('inline their modules: no import of TypeBox, Kysely, Fastify or pino from node_modules at run time', () => {
    // The programs (one CommonJS file each, run with the code cache) and the help's ES module build.
    const files = [
      'cli/main.cjs',
      'app/server.cjs',
      'spin/server.cjs',
      'cli/main.js',
      ...readdirSync(path.join(packageDir, 'dist', 'chunks')).map((f) => `chunks/${f}`),
    ];
    const imported = new Set<string>();
    for (const file of files.filter((f) => /\.c?js$/.test(f))) {
      const text = readFileSync(path.join(packageDir, 'dist', file), 'utf8');
      // esbuild writes static imports one a line, dynamic ones and CommonJS requires as calls.
      const specifiers = [
        ...text.matchAll(/^import\b[^\n]*?\bfrom\s*"([^"]+)";$/gm),
        ...text.matchAll(/(?<![.\w$])(?:import|__require|require)\("([^"]+)"\)/g),
      ];
      // Not imports: code that Ajv and ajv-formats generate as text (standalone validators) names
      // their runtime files, and template strings name a module by a variable.
      const generated = (name: string) => /^ajv(-formats)?\/dist\//.test(name) || name.includes('${');
      for (const match of specifiers)
        if (!match[1]!.startsWith('.') && !generated(match[1]!)) imported.add(match[1]!);
    }
    const packages = [...imported].filter(
      (name) => !name.startsWith('node:') && !builtinModules.includes(name),
    );
    expect(
      packages.filter((name) => /^(typebox|kysely|fastify|ajv|pino)(\/|$)/.test(name)),
      packages.join(' '),
    ).toEqual([]);
    // What stays in node_modules: native, optional, and packages that read their own files.
    expect(packages).toEqual(expect.arrayContaining(['better-sqlite3', '@fastify/swagger-ui']));
    expect(
      packages.every((name) =>
        /^(better-sqlite3|ioredis|bullmq|pg|nodemailer|@fastify\/(swagger-ui|static))(\/|$)/.test(name),
      ),
      packages.join(' '),
    ).toBe(true);
  });

  it('the CLI opens the store: migrate status and flags list on a new data directory', async () => {
    const env = { PATH: process.env['PATH'], BULWARK_DATA_DIR: dataDir() };
    const bin = path.join(packageDir, pkg.bin['bulwark']!);
    const migrate = await run(process.execPath, [bin, 'migrate', 'up'], { cwd: consumerDir, env });
    expect(migrate.stdout + migrate.stderr).toMatch(/0001_kv/);
    const flags = await run(process.execPath, [bin, 'flags', 'list', '--json'], { cwd: consumerDir, env });
    expect(JSON.parse(flags.stdout)).toHaveProperty('flags');
  });

  it('the demo app starts, answers its routes, the admin API, the API docs and Swagger UI, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [path.join(packageDir, 'dist', 'app', 'server.js')], {
      cwd: consumerDir,
      env: { PATH: process.env['PATH'], PORT: '0', BULWARK_DATA_DIR: dataDir(), BULWARK_ADMIN_KEY: KEY },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const base = await new Promise<string>((resolve, reject) => {
        let err = '';
        child.stderr.on('data', (chunk: Buffer) => {
          err += chunk.toString();
          const match = /listening on (http:\/\/\S+)/.exec(err);
          if (match !== null) resolve(match[1]!);
        });
        void exited.then((code) => reject(new Error(`exited ${code}: ${err}`)));
      });
      const get = (url: string, init?: RequestInit) => fetch(`${base}${url}`, init);
      expect((await get('/health/live')).status).toBe(200);
      const echo = await get('/echo', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect([echo.status, ((await echo.json()) as { error: { code: string } }).error.code]).toEqual([
        400,
        'BWK_ERR_HTTP_VALIDATION',
      ]);
      const audit = await get('/admin/api/audit?limit=5', { headers: { authorization: `Bearer ${KEY}` } });
      expect(audit.status).toBe(200);
      const spec = (await (await get('/api-docs/json')).json()) as { paths: Record<string, unknown> };
      expect(Object.keys(spec.paths)).toEqual(
        expect.arrayContaining(['/echo', '/health/live', '/admin/api/audit']),
      );
      const ui = await get('/api-docs/static/index.html');
      expect([ui.status, await ui.text()]).toEqual([200, expect.stringContaining('swagger-ui') as unknown]);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 60_000);
});

import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
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

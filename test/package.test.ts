import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// Resolves through package.json "exports" to the compiled dist/ (built by `npm install`'s prepare
// script), as a user of the package would.
describe('package entry points', () => {
  it('bulwark, bulwark/fastify and bulwark/errors resolve to the built library', async () => {
    const main = await import('bulwark');
    expect(typeof main.createBulwark).toBe('function');
    expect(typeof main.isBulwarkError).toBe('function');
    const fastify = await import('bulwark/fastify');
    expect(typeof fastify.default).toBe('function');
    expect(typeof fastify.fastifyOptions).toBe('function');
    const errors = await import('bulwark/errors');
    expect(Object.keys(errors.catalogue)).toContain('BWK_ERR_HTTP_NOT_FOUND');
  });

  it('declares the bulwark bin with a node shebang', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      bin: Record<string, string>;
      type: string;
    };
    expect(pkg.type).toBe('module');
    const bin = readFileSync(new URL(`../${pkg.bin['bulwark']}`, import.meta.url), 'utf8');
    expect(bin.startsWith('#!/usr/bin/env node')).toBe(true);
  });
});

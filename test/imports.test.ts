import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The import rules of .dependency-cruiser.js, run as `npm run lint` runs them: on a fixture that
// breaks each rule once, and on src/, which breaks none.
const root = fileURLToPath(new URL('..', import.meta.url));
const config = path.join(root, '.dependency-cruiser.js');
const depcruise = path.join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const LINT = 'depcruise src --config .dependency-cruiser.js';

/** Runs the rules on `src` in `cwd`; resolves with the exit code and the report. */
function cruise(cwd: string): Promise<{ code: number; report: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [depcruise, 'src', '--config', config, '--no-progress'],
      { cwd, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : error.code;
        if (typeof code !== 'number') reject(error ?? new Error('no exit code'));
        else resolve({ code, report: `${stdout}${stderr}` });
      },
    );
  });
}

/** `rule: from` of each violation in a report (a circle is reported from the module it starts at). */
function violations(report: string): string[] {
  return [...report.matchAll(/^\s*error ([\w-]+): (\S+)/gm)]
    .map(([, rule, from]) => `${rule}: ${from}`)
    .sort();
}

describe('import rules (npm run lint)', () => {
  it('npm run lint runs them on src/', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts['lint']).toContain(LINT);
  });

  it('fail on a deliberate breach of each rule, a circle of type-only imports included', async () => {
    const { code, report } = await cruise(path.join(root, 'test', 'fixtures', 'import-rules'));
    expect(code).not.toBe(0);
    expect(violations(report)).toEqual(
      [
        'no-circular: src/alerts/engine.ts',
        'foundation-not-to-capability: src/store/tables.ts',
        'capability-not-to-edge: src/cache/entry.ts',
        'supervised-not-to-supervisor: src/supervised/client.ts',
        'not-in-a-layer: src/misc/helper.ts',
        'to-module-not-in-a-layer: src/http/reply.ts',
        'no-orphans: src/errors/lonely.ts',
        'not-to-dev-dep: src/logging/suite.ts',
      ].sort(),
    );
  }, 120_000);

  it('pass on src/', async () => {
    const { code, report } = await cruise(root);
    expect(violations(report)).toEqual([]);
    expect(code).toBe(0);
  }, 120_000);
});

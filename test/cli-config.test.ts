import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Explanation, RevisionInfo } from '../src/config/index.js';
import { spawnTs } from './helpers/process.js';

const SCHEMA = 'test/fixtures/cli-config-schema.ts';

let dir: string;
let file: string;

/** Runs `bulwark config <args>` on the test's config file (USER=alice: author `cli:alice`). */
async function config(args: string[], env: NodeJS.ProcessEnv = {}) {
  const run = spawnTs('src/cli/main.ts', ['config', ...args], {
    BULWARK_CONFIG_FILE: file,
    USER: 'alice',
    ...env,
  });
  const { code } = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'bulwark-cli-config-'));
  file = path.join(dir, 'config.json');
  writeFileSync(file, '{\n  "port": 8080\n}\n');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

// Each test spawns the CLI (tsx, seconds per start on a loaded machine) up to 8 times in sequence.
describe('bulwark config', { timeout: 120_000 }, () => {
  it('--help lists the subcommands; each has its own --help with the common options', async () => {
    const [top, set] = await Promise.all([config(['--help']), config(['set', '--help'])]);
    expect(top.code).toBe(0);
    for (const sub of ['get', 'set', 'validate', 'history', 'diff', 'rollback', 'explain'])
      expect(top.stdout).toContain(sub);
    expect(set.code).toBe(0);
    for (const option of ['--file <path>', '--schema <module>', '--env-prefix <prefix>', '--json'])
      expect(set.stdout).toContain(option);
    expect(set.stdout).toContain('--if-revision <n>');
    expect(set.stdout).toContain('--reason <text>');
  });

  it('set writes a revision (the value parsed as JSON); get prints the config with secrets redacted', async () => {
    // Revision 1 is the file as found (author `file`); --file comes from BULWARK_CONFIG_FILE.
    const set = await config([
      ...['set', 'db', '{"poolSize":9,"password":"hunter2"}', '--schema', SCHEMA],
      ...['--if-revision', '1', '--reason', 'more load'],
    ]);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('set db: revision 2');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      port: 8080,
      db: { poolSize: 9, password: 'hunter2' },
    });

    const get = await config(['get', '--schema', SCHEMA]);
    expect(get.code, get.stderr).toBe(0);
    expect(JSON.parse(get.stdout)).toEqual({
      port: 8080,
      db: { host: 'localhost', poolSize: 9, password: '[redacted]' },
    });
    expect(get.stdout + get.stderr).not.toContain('hunter2');
  });

  it('an invalid value exits 1 naming the field; a stale --if-revision exits 1 with the conflict', async () => {
    const [invalid, stale] = await Promise.all([
      config(['set', 'db.poolSize', '0', '--schema', SCHEMA]),
      config(['set', 'port', '1', '--schema', SCHEMA, '--if-revision', '1']),
    ]);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('BWK_ERR_CONFIG_INVALID');
    expect(invalid.stderr).toMatch(/db\.poolSize: must be >= 1/);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('BWK_ERR_CONFIG_CONFLICT');
    expect(stale.stderr).toContain('not the expected revision 1');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ port: 8080, db: { poolSize: 9 } });
  });

  it('diff shows the changes between revisions, secrets redacted', async () => {
    const diff = await config(['diff', '1', '2', '--schema', SCHEMA]);
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.stdout).toContain('db.poolSize: 5 -> 9');
    expect(diff.stdout).toContain('db.password: "[redacted]" -> "[redacted]"');
    expect(diff.stdout).not.toContain('hunter2');
  });

  it('rollback restores an old revision as a new one; history shows authors, reasons, changed paths', async () => {
    const rollback = await config(['rollback', '1', '--schema', SCHEMA]);
    expect(rollback.code, rollback.stderr).toBe(0);
    expect(rollback.stdout).toContain('rolled back to revision 1: revision 3');
    expect(readFileSync(file, 'utf8')).toBe('{\n  "port": 8080\n}\n');

    // history needs no --schema: the stored revisions carry their (redacted) diffs.
    const history = await config(['history', '--json', '--limit', '3']);
    expect(history.code, history.stderr).toBe(0);
    const revisions = JSON.parse(history.stdout) as RevisionInfo[];
    expect(revisions.map((r) => [r.revision, r.author, r.reason])).toEqual([
      [3, 'cli:alice', 'rollback to revision 1'],
      [2, 'cli:alice', 'more load'],
      [1, 'file', 'first load'],
    ]);
    expect(history.stdout).toContain('"[redacted]"');
    expect(revisions[0]?.diff.map((d) => d.path).sort()).toEqual(['db.password', 'db.poolSize']);
    expect(history.stdout).not.toContain('hunter2');
  });

  it('explain shows the layer and source; validate accepts the valid file', async () => {
    const [file1, env, valid] = await Promise.all([
      config(['explain', 'port', '--schema', SCHEMA, '--json']),
      config(['explain', 'db.poolSize', '--schema', SCHEMA, '--env-prefix', 'APP'], {
        APP_DB_POOL_SIZE: '7',
      }),
      config(['validate', '--schema', SCHEMA]),
    ]);
    expect(file1.code, file1.stderr).toBe(0);
    expect(JSON.parse(file1.stdout)).toEqual<Explanation>({
      path: 'port',
      value: 8080,
      layer: 'file',
      source: `${file}:2`,
    });
    expect(env.code, env.stderr).toBe(0);
    expect(env.stdout).toContain('db.poolSize = 7');
    expect(env.stdout).toMatch(/layer:\s+env/);
    expect(env.stdout).toMatch(/source:\s+APP_DB_POOL_SIZE/);
    expect(valid.code, valid.stderr).toBe(0);
    expect(valid.stdout).toContain('valid (revision 3)');
  });

  it('a hand-broken file: validate exits 1 naming the line; get warns and prints the last good values', async () => {
    writeFileSync(file, '{\n  "port": 8081,\n  "db": { poolSize: 3 }\n}\n');
    const [validate, get] = await Promise.all([
      config(['validate', '--schema', SCHEMA]),
      config(['get', 'port', '--schema', SCHEMA]),
    ]);
    expect(validate.code).toBe(1);
    expect(validate.stderr).toContain('BWK_ERR_CONFIG_PARSE');
    expect(validate.stderr).toContain('config.json line 3');
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout.trim()).toBe('8080');
    expect(get.stderr).toMatch(/warning: .*config\.json is invalid \(BWK_ERR_CONFIG_PARSE.*line 3/);
    expect(get.stderr).toContain('revision 3, the last good one');
  });

  it('a missing --schema module exits 1 naming --schema', async () => {
    const missing = await config(['get', '--schema', 'test/fixtures/no-such-schema.ts']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('BWK_ERR_CLI_USAGE');
    expect(missing.stderr).toContain('--schema test/fixtures/no-such-schema.ts');
  });
});

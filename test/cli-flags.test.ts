import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlagOverview } from '../src/admin/flags.js';
import type { EvaluationDetails, FlagDefinition } from '../src/flags/types.js';
import type { AuditRecord } from '../src/store/types.js';
import { checkoutFlag } from './helpers/flags.js';
import { spawnTs } from './helpers/process.js';

let dataDir: string;
let files: string;

async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const run = spawnTs('src/cli/main.ts', args, { BULWARK_DATA_DIR: dataDir, ...env });
  const { code } = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** Writes `text` to a file of the test's temp dir and returns its path. */
function file(name: string, text: string): string {
  const target = path.join(files, name);
  writeFileSync(target, text);
  return target;
}

/** The table row whose first cell is `first`, split into cells. */
function rowOf(stdout: string, first: string): string[] | undefined {
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((cells) => cells[0] === first);
}

beforeAll(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-cli-flags-'));
  files = mkdtempSync(path.join(tmpdir(), 'bulwark-cli-flags-files-'));
});

afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(files, { recursive: true, force: true });
});

// Each test spawns the CLI (tsx, seconds per start on a loaded machine) up to 8 times in sequence.
describe('bulwark flags', { timeout: 120_000 }, () => {
  it('--help lists the subcommands; each has its own --help', async () => {
    const [top, rollout, evaluate] = await Promise.all(
      [['flags'], ['flags', 'rollout'], ['flags', 'eval']].map((args) => cli([...args, '--help'])),
    );
    for (const run of [top, rollout, evaluate]) expect(run?.code).toBe(0);
    for (const sub of ['list', 'get', 'set', 'kill', 'revive', 'rollout', 'history', 'delete', 'eval'])
      expect(top?.stdout).toContain(sub);
    expect(rollout?.stdout).toContain('<percentage>');
    expect(rollout?.stdout).toContain('--variant <v>');
    expect(rollout?.stdout).toContain('--reason <text>');
    expect(evaluate?.stdout).toContain('--context <json>');
    expect(evaluate?.stdout).toContain('--default <json>');
  });

  it('set creates a flag from a file (audited as cli:$USER); list and get show it', async () => {
    const set = await cli(
      ['flags', 'set', file('checkout.json', JSON.stringify(checkoutFlag)), '--reason', 'staff preview'],
      { USER: 'ada' },
    );
    expect(set).toMatchObject({ code: 0, stdout: 'set new-checkout (version 1)\n' });

    const [table, json, get, getJson] = await Promise.all([
      cli(['flags', 'list']),
      cli(['flags', 'list', '--json']),
      cli(['flags', 'get', 'new-checkout']),
      cli(['flags', 'get', 'new-checkout', '--json']),
    ]);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]?.trim().split(/\s+/)).toEqual([
      'key',
      'type',
      'enabled',
      'rollout',
      'rules',
      'version',
    ]);
    expect(rowOf(table.stdout, 'new-checkout')).toEqual(['new-checkout', 'boolean', 'yes', '-', '1', '1']);
    expect(rowOf(table.stdout, 'bulwark.cache')).toEqual(['bulwark.cache', 'boolean', 'yes', '-', '0', '0']);
    expect(table.stdout).toMatch(/^7 flags from the store \(revision 1, read .+\)$/m);
    const overview = JSON.parse(json.stdout) as FlagOverview;
    expect(overview.provenance).toMatchObject({ source: 'store', revision: 1, flags: 7 });
    expect(overview.flags).toContainEqual({
      ...checkoutFlag,
      version: 1,
      updatedAt: expect.any(Number) as number,
    });

    expect(get.code).toBe(0);
    expect(get.stdout.split('\n')[0]).toBe('new-checkout  boolean  enabled  version 1');
    expect(JSON.parse(getJson.stdout)).toEqual({ flag: checkoutFlag, version: 1 });
  });

  it('kill makes eval answer DISABLED; revive and rollout 25 make it SPLIT; history shows the reasons', async () => {
    const staff = ['--context', '{"email":"ada@acme.test"}'];
    const kill = await cli(['flags', 'kill', 'new-checkout', '--reason', 'incident 42']);
    expect(kill).toMatchObject({ code: 0, stdout: 'killed new-checkout: everyone gets "off"\n' });
    const killed = await cli(['flags', 'eval', 'new-checkout', ...staff]);
    expect(killed.code).toBe(0);
    expect(rowOf(killed.stdout, 'reason')).toEqual(['reason', 'DISABLED']);
    expect(rowOf(killed.stdout, 'value')).toEqual(['value', 'false']);

    expect(await cli(['flags', 'revive', 'new-checkout'])).toMatchObject({
      code: 0,
      stdout: 'revived new-checkout\n',
    });
    const rollout = await cli(['flags', 'rollout', 'new-checkout', '25', '--reason', 'first quarter']);
    expect(rollout).toMatchObject({ code: 0, stdout: 'new-checkout: 25% get "on", the others "off"\n' });

    const [split, matched, history, limited] = await Promise.all([
      cli([
        'flags',
        'eval',
        'new-checkout',
        '--context',
        '{"targetingKey":"u1"}',
        '--default',
        'true',
        '--json',
      ]),
      cli(['flags', 'eval', 'new-checkout', ...staff]),
      cli(['flags', 'history', 'new-checkout']),
      cli(['flags', 'history', 'new-checkout', '--limit', '1', '--json']),
    ]);
    expect(split.code).toBe(0);
    expect(JSON.parse(split.stdout)).toMatchObject({ key: 'new-checkout', reason: 'SPLIT' });
    expect(['on', 'off']).toContain((JSON.parse(split.stdout) as EvaluationDetails).variant);
    expect(rowOf(matched.stdout, 'reason')).toEqual(['reason', 'TARGETING_MATCH']);
    expect(rowOf(matched.stdout, 'rule')).toEqual(['rule', 'staff']);

    expect(history.code).toBe(0);
    const rows = history.stdout.trim().split('\n').slice(1);
    expect(
      rows.map((row) =>
        row
          .trim()
          .split(/\s{2,}/)
          .slice(1),
      ),
    ).toEqual([
      ['cli', 'flag.rollout', 'first quarter'],
      ['cli', 'flag.revive'],
      ['cli', 'flag.kill', 'incident 42'],
      ['cli:ada', 'flag.set', 'staff preview'],
    ]);
    const [last] = JSON.parse(limited.stdout) as AuditRecord[];
    expect(last).toMatchObject({ action: 'flag.rollout', target: 'flag:new-checkout' });
    expect((last?.detail as { after: FlagDefinition }).after.rollout).toEqual({
      variant: 'on',
      otherwise: 'off',
      percentage: 25,
    });
  });

  it('bad files, bad arguments and unknown flags exit 1 naming what is wrong, changing nothing', async () => {
    const badJson = file('bad.json', '{ "key": "x", }');
    const missing = path.join(files, 'missing.json');
    const invalid = file('invalid.json', JSON.stringify({ ...checkoutFlag, defaultVariant: 'maybe' }));
    const [parse, absent, definition, percentage, unknown] = await Promise.all([
      cli(['flags', 'set', badJson]),
      cli(['flags', 'set', missing]),
      cli(['flags', 'set', invalid]),
      cli(['flags', 'rollout', 'new-checkout', '101']),
      cli(['flags', 'kill', 'nope']),
    ]);
    for (const run of [parse, absent, definition, percentage, unknown]) {
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
    }
    expect(parse.stderr).toContain(badJson);
    expect(parse.stderr).toMatch(/position \d+/);
    expect(absent.stderr).toContain(missing);
    expect(definition.stderr).toContain('BWK_ERR_FLAG_INVALID');
    expect(definition.stderr).toContain('defaultVariant: "maybe" is not a variant');
    expect(percentage.stderr).toContain('<percentage> must be a number from 0 to 100');
    expect(unknown.stderr).toContain('BWK_ERR_FLAG_NOT_FOUND: No flag nope');
  });

  it('delete removes a flag; afterwards get and delete exit 1 with BWK_ERR_FLAG_NOT_FOUND', async () => {
    const del = await cli(['flags', 'delete', 'new-checkout', '--reason', 'shipped']);
    expect(del).toMatchObject({ code: 0, stdout: 'deleted new-checkout\n' });
    const [get, again, history] = await Promise.all([
      cli(['flags', 'get', 'new-checkout']),
      cli(['flags', 'delete', 'new-checkout']),
      cli(['flags', 'history', 'new-checkout', '--limit', '2']),
    ]);
    for (const run of [get, again]) {
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('BWK_ERR_FLAG_NOT_FOUND');
    }
    // The refused set and rollout above wrote nothing: the change before the delete is the 25 %.
    expect(
      history.stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((row) =>
          row
            .trim()
            .split(/\s{2,}/)
            .slice(1),
        ),
    ).toEqual([
      ['cli', 'flag.delete', 'shipped'],
      ['cli', 'flag.rollout', 'first quarter'],
    ]);
  });
});

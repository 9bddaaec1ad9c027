import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isBulwarkError } from '../src/errors/index.js';
import { controlSocketPath } from '../src/supervisor/control.js';
import { flagOf, resolveSuperviseOptions, superviseSchema } from '../src/supervisor/options.js';
import { RestartPolicy } from '../src/supervisor/policy.js';
import { PressureLadder } from '../src/supervisor/pressure.js';

describe('RestartPolicy', () => {
  const policy = (random = () => 0.5) =>
    new RestartPolicy({
      initialMs: 100,
      maxMs: 1000,
      stableMs: 10_000,
      maxRestarts: 5,
      windowMs: 60_000,
      random,
    });

  it('restarts the first crash at once, then doubles with equal jitter up to the cap', () => {
    const p = policy(() => 0);
    const delays = [0, 1, 2, 3, 4].map((i) => p.next(i * 10, 5));
    expect(delays.map((d) => (d.action === 'restart' ? d.delayMs : -1))).toEqual([0, 50, 100, 200, 400]);
    const high = policy(() => 0.999_999);
    expect([1, 2, 3, 4, 5, 6].map((s) => high.delayFor(s))).toEqual([0, 100, 200, 400, 800, 1000]);
  });

  it('a stable run ends the streak: the next crash restarts at once again', () => {
    const p = policy();
    p.next(0, 5);
    expect(p.next(10, 5)).toMatchObject({ action: 'restart', streak: 2 });
    expect(p.next(20, 20_000)).toMatchObject({ action: 'restart', delayMs: 0, streak: 1 });
  });

  it('parks past the budget of the window, and counts again once the window moved on', () => {
    const p = policy();
    for (let i = 0; i < 5; i++) expect(p.next(i * 1000, 20_000).action).toBe('restart');
    expect(p.next(5_000, 20_000)).toEqual({ action: 'park', restartsInWindow: 5 });
    expect(p.next(70_000, 20_000).action).toBe('restart');
    p.reset();
    expect(p.restartsInWindow(70_000)).toBe(0);
  });
});

describe('PressureLadder', () => {
  const ladder = (hardAtLimit = true) =>
    new PressureLadder({ limit: 1000, warnAt: 0.7, actAt: 0.8, dwellMs: 100, hardAtLimit });

  it('warns once, then soft → medium → hard while the steps do not help, with before and after', () => {
    const l = ladder();
    expect(l.observe(0, 500)).toEqual([]);
    expect(l.observe(10, 720)).toEqual([{ kind: 'warn', value: 720, threshold: 700 }]);
    expect(l.observe(20, 750)).toEqual([]);
    expect(l.observe(30, 810)).toEqual([{ kind: 'step', step: 'soft', value: 810, threshold: 800 }]);
    expect(l.observe(100, 900)).toEqual([]); // still dwelling
    expect(l.observe(130, 850)).toEqual([
      { kind: 'judged', step: 'soft', before: 810, after: 850, helped: false },
      { kind: 'step', step: 'medium', value: 850, threshold: 800 },
    ]);
    expect(l.observe(230, 880)).toEqual([
      { kind: 'judged', step: 'medium', before: 850, after: 880, helped: false },
      { kind: 'step', step: 'hard', value: 880, threshold: 800 },
    ]);
    expect(l.observe(400, 990)).toEqual([]); // hard is final until reset
  });

  it('a step that helped ends the ladder; pressure later starts it over at soft', () => {
    const l = ladder();
    l.observe(0, 820);
    expect(l.observe(100, 750)).toEqual([
      { kind: 'judged', step: 'soft', before: 820, after: 750, helped: true },
    ]);
    expect(l.step).toBeUndefined();
    expect(l.observe(110, 500)).toEqual([{ kind: 'clear', value: 500 }]);
    expect(l.observe(120, 830)).toEqual([{ kind: 'step', step: 'soft', value: 830, threshold: 800 }]);
  });

  it('reaching the limit is hard at once, whatever the step in force', () => {
    const l = ladder();
    l.observe(0, 820);
    expect(l.observe(10, 1000)).toEqual([
      { kind: 'judged', step: 'soft', before: 820, after: 1000, helped: false },
      { kind: 'step', step: 'hard', value: 1000, threshold: 1000 },
    ]);
    const fresh = ladder();
    expect(fresh.observe(0, 5000)).toEqual([{ kind: 'step', step: 'hard', value: 5000, threshold: 1000 }]);
  });

  it('without hardAtLimit (CPU) every step gets its dwell time, even at the limit', () => {
    const l = ladder(false);
    expect(l.observe(0, 1500)).toEqual([{ kind: 'step', step: 'soft', value: 1500, threshold: 800 }]);
    expect(l.observe(50, 1500)).toEqual([]);
    expect(l.observe(100, 1500).at(-1)).toEqual({
      kind: 'step',
      step: 'medium',
      value: 1500,
      threshold: 800,
    });
    expect(l.observe(200, 1500).at(-1)).toEqual({ kind: 'step', step: 'hard', value: 1500, threshold: 800 });
  });
});

describe('supervise options', () => {
  const problems = (input: Parameters<typeof resolveSuperviseOptions>[0]) => {
    try {
      resolveSuperviseOptions(input);
    } catch (error) {
      if (isBulwarkError(error, 'BWK_ERR_SUPERVISOR_OPTIONS')) return error.details ?? [];
      throw error;
    }
    return [];
  };

  it('defaults, env, then flags; exit codes from a comma list', () => {
    const options = resolveSuperviseOptions({
      cli: { command: ['node', 'app.js'], instances: '2', finalExitCodes: '78, 64' },
      env: { PORT: '4000', BULWARK_DATA_DIR: '/srv/data' },
    });
    expect(options).toMatchObject({
      command: ['node', 'app.js'],
      instances: 2,
      port: 4000,
      stateDir: '/srv/data/supervisor',
      finalExitCodes: [78, 64],
      heartbeatTimeoutMs: 3000,
    });
  });

  it('names every bad field by its flag, and the missing command', () => {
    const found = problems({ cli: { instances: '0', startTimeoutMs: '1e3', port: 'x' }, env: {} });
    expect(found.map((p) => p.field)).toEqual([
      '--port',
      '--start-timeout-ms',
      '<command...>',
      '--instances',
    ]);
    expect(found[0]?.message).toBe('"x" is not an integer');
    expect(found[1]?.message).toBe('"1e3" is not an integer');
    expect(found[2]?.message).toContain('missing');
    expect(found[3]?.message).toContain('"0" is invalid');
    expect(problems({ cli: { command: ['x'] }, env: { PORT: '99999' } }).map((p) => p.field)).toEqual([
      'PORT',
    ]);
  });

  it('names a config file field, an unknown key and a bad file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bwk-opts-'));
    const file = path.join(dir, 'supervise.json');
    writeFileSync(file, JSON.stringify({ command: ['node', 'a.js'], maxMemoryMb: 'lots', colour: 'red' }));
    expect(problems({ configFile: file, env: {} })).toEqual([
      { field: `${file}: maxMemoryMb`, message: '"lots" is not an integer' },
      { field: `${file}: colour`, message: 'unknown option "colour"' },
    ]);
    writeFileSync(file, '{ "command": [');
    const [bad] = problems({ configFile: file, env: {} });
    expect(bad?.field).toBe('--config');
    expect(bad?.message).toContain('not valid JSON');
    // Flags override the file.
    writeFileSync(file, JSON.stringify({ command: ['node', 'a.js'], instances: 3 }));
    expect(resolveSuperviseOptions({ configFile: file, cli: { instances: '2' }, env: {} }).instances).toBe(2);
  });
});

describe('control socket path', () => {
  it('is in the state dir, or in the temp dir when that path is too long for a Unix socket', () => {
    expect(controlSocketPath('/srv/app/data/supervisor')).toBe('/srv/app/data/supervisor/control.sock');
    const long = `/srv/${'x'.repeat(120)}/supervisor`;
    const socket = controlSocketPath(long);
    expect(socket.startsWith(os.tmpdir())).toBe(true);
    expect(Buffer.byteLength(socket)).toBeLessThan(104);
    expect(controlSocketPath(long)).toBe(socket);
    expect(controlSocketPath(`${long}2`)).not.toBe(socket);
  });
});

describe('docs/supervisor.md', () => {
  it('lists every option with its flag and config key', () => {
    const doc = readFileSync('docs/supervisor.md', 'utf8');
    for (const key of Object.keys(superviseSchema.properties)) {
      if (key === 'command' || key === 'env') continue;
      const flag = key === 'echo' ? '--no-echo' : flagOf(key);
      expect(doc, key).toMatch(new RegExp(`\\| \`${flag}\` +\\| \`${key}\` `));
    }
  });
});

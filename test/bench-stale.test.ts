import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BENCHMARKS } from '../bench/benchmarks.js';
import { freshness, measuredFiles, runnable } from '../bench/stale.js';

// `npm run bench -- --status` / `--stale`: which recorded figures are older than the code they
// measure, followed through the import graph from each benchmark and the programs it starts.
const root = path.resolve(import.meta.dirname, '..');

describe('figures older than the code they measure', () => {
  it('names only entries that exist', () => {
    const missing = BENCHMARKS.flatMap((b) => [`bench/${b.name}.ts`, ...(b.entries ?? [])]).filter(
      (entry) => !existsSync(path.join(root, entry)),
    );
    expect(missing).toEqual([]);
  });

  it('reads code as it runs: comments and types go, imports stay as written', () => {
    const code = runnable('x.ts', "import { a } from './a.js';\n// a note\nexport const y: number = 1;\n");
    expect(runnable('x.ts', "import { a } from './a.js';\nexport const y = 1; /* other */\n")).toBe(code);
    // An unused value import still loads its module (verbatimModuleSyntax, as tsconfig.json has it).
    expect(runnable('x.ts', 'export const y = 1;\n')).not.toBe(code);
    expect(runnable('x.ts', "import type { a } from './a.js';\nexport const y = 1;\n")).toBe(
      runnable('x.ts', 'export const y = 1;\n'),
    );
    expect(runnable('x.ts', 'export const y = 2;\n')).not.toBe(runnable('x.ts', 'export const y = 1;\n'));
    expect(runnable('notes.md', '# a\n')).toBe('# a\n');
    expect(runnable('x.ts', undefined)).toBeUndefined();
  });

  it('follows imports from the benchmark and from the processes it starts', async () => {
    const chosen = BENCHMARKS.filter((b) => ['http', 'ratelimit', 'supervisor', 'console'].includes(b.name));
    const files = await measuredFiles(chosen, root);
    const http = files.get('http') ?? [];
    expect(http).toEqual(expect.arrayContaining(['bench/http.ts', 'bench/lib.ts', 'bench/servers/stack.ts']));
    // Through the server it starts into the runtime, down to the limiter on the request path.
    expect(http).toEqual(expect.arrayContaining(['bench/servers/bulwark.ts', 'src/ratelimit/index.ts']));
    const ratelimit = files.get('ratelimit') ?? [];
    expect(ratelimit).toEqual(expect.arrayContaining(['src/ratelimit/index.ts', 'package-lock.json']));
    expect(ratelimit).not.toContain('bench/servers/bulwark.ts');
    expect(ratelimit.some((file) => file.startsWith('src/supervisor/'))).toBe(false);
    const supervisor = files.get('supervisor') ?? [];
    expect(supervisor).toContain('bench/fixtures/supervisor-app.js');
    expect(supervisor.some((file) => file.startsWith('src/supervisor/'))).toBe(true);
    expect(files.get('console')).toContain('console/src/app.tsx');
  });

  describe('in a repository of its own', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-stale-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim();
    const write = (file: string, text: string) => {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), text);
    };
    const record = (name: string, commit: string) =>
      write(`bench/results/${name}.json`, JSON.stringify({ commit, date: '2026-12-06T00:00:00.000Z' }));
    const benches = [
      { name: 'a', what: 'imports lib' },
      { name: 'b', what: 'imports nothing' },
      { name: 'c', what: 'never run' },
    ];
    const stale = async () =>
      Object.fromEntries((await freshness(benches, dir)).map((row) => [row.name, row]));

    it('is current until a later commit touches what a benchmark imports, and only that one', async () => {
      git('init', '-q');
      git('config', 'user.email', 'bench@example.invalid');
      git('config', 'user.name', 'bench');
      write(
        'tsconfig.json',
        JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext' } }),
      );
      write('package-lock.json', '{}\n');
      write('bench/a.ts', "import { x } from './lib.js';\nconsole.log(x);\n");
      write('bench/lib.ts', 'export const x = 1;\n');
      write('bench/b.ts', 'console.log(2);\n');
      git('add', '.');
      git('commit', '-qm', 'code');
      const measured = git('rev-parse', '--short', 'HEAD');
      record('a', measured);
      record('b', measured);
      git('add', '.');
      git('commit', '-qm', 'figures');
      let rows = await stale();
      expect([rows['a']?.stale, rows['b']?.stale, rows['c']?.stale]).toEqual([false, false, true]);
      expect(rows['c']?.commit).toBeUndefined();

      write('bench/lib.ts', 'export const x = 3;\n');
      git('commit', '-qam', 'faster lib');
      rows = await stale();
      expect(rows['a']?.commitsSince).toEqual([expect.stringMatching(/ faster lib$/)]);
      expect([rows['a']?.stale, rows['b']?.stale]).toEqual([true, false]);

      write('bench/b.ts', 'console.log(4);\n');
      rows = await stale();
      expect(rows['b']).toMatchObject({ stale: true, commitsSince: [], uncommitted: ['bench/b.ts'] });
    });

    it('counts a result taken on a changed tree as stale', async () => {
      git('checkout', '-q', '--', '.');
      record('b', `${git('rev-parse', '--short', 'HEAD')} + uncommitted changes`);
      git('commit', '-qam', 'figures taken on a changed tree');
      const rows = await stale();
      expect(rows['b']).toMatchObject({ stale: true, commitsSince: [] });
      expect(rows['b']?.uncommitted[0]).toMatch(/uncommitted changes/);
    });

    it('counts a result naming a commit this clone lacks as stale, without failing', async () => {
      record('b', 'deadbee');
      const rows = await stale();
      expect(rows['b']).toMatchObject({
        stale: true,
        commitsSince: ['deadbee is not a commit of this clone'],
      });
      expect(rows['a']?.stale).toBe(true);
    });

    it('does not count a change to comments or types alone, in the tree or in a commit', async () => {
      const head = git('rev-parse', '--short', 'HEAD');
      record('a', head);
      record('b', head);
      git('add', '.');
      git('commit', '-qm', 'figures again');
      write('bench/lib.ts', '// The answer.\nexport const x: number = 3; /* still */\n');
      let rows = await stale();
      expect(rows['a']).toMatchObject({ stale: false, uncommitted: [], unchangedCode: ['bench/lib.ts'] });
      git('commit', '-qam', 'a comment and a type');
      rows = await stale();
      expect(rows['a']).toMatchObject({ stale: false, commitsSince: [], unchangedCode: ['bench/lib.ts'] });
      write('bench/lib.ts', '// The answer.\nexport const x: number = 4;\n');
      rows = await stale();
      expect(rows['a']).toMatchObject({ stale: true, uncommitted: ['bench/lib.ts'] });
      git('commit', '-qam', 'code again');
      rows = await stale();
      // Every commit to a file whose code moved is listed, its comment-only ones too.
      expect(rows['a']?.commitsSince).toEqual([
        expect.stringMatching(/ code again$/),
        expect.stringMatching(/ a comment and a type$/),
      ]);
      expect([rows['a']?.stale, rows['b']?.stale]).toEqual([true, false]);
    });
  });

  it('says so on the command line, and refuses two modes at once', () => {
    const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
    const status = spawnSync(tsx, ['bench/run.ts', '--status', 'http', 'cli'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(status.status).toBe(0);
    expect(status.stdout).toMatch(
      /^ {2}http +(measured at [0-9a-f]{7,} \(\d{4}-\d\d-\d\d\), (current|STALE)|no result yet)/m,
    );
    expect(status.stdout).toMatch(/^ {2}cli /m);
    expect(status.stdout).not.toMatch(/^ {2}queue /m);
    const both = spawnSync(tsx, ['bench/run.ts', '--stale', '--smoke'], { cwd: root, encoding: 'utf8' });
    expect(both.status).toBe(2);
    expect(both.stderr).toContain('choose one of');
  });
});

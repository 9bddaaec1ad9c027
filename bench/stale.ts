// Which recorded figures are older than the code they measure. A benchmark measures its own file,
// the processes it starts (BENCHMARKS' `entries`) and everything those import, followed through the
// import graph by dependency-cruiser (as `npm run lint` does), plus package-lock.json (a peer's or a
// library's version moves figures too). A result is stale when the code of any of those files
// differs from the commit it names, in a later commit or in the tree. Code is what runs: a change
// to comments or types alone (TypeScript emits the same JavaScript) moves no figure.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { cruise } from 'dependency-cruiser';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import ts from 'typescript';
import { BENCHMARKS, type Benchmark } from './benchmarks.js';

export interface Freshness {
  name: string;
  /** The commit the recorded figures name; undefined when there is no result. */
  commit: string | undefined;
  date: string | undefined;
  /** Commits after `commit` that touched what the benchmark measures, newest first. */
  commitsSince: string[];
  /** Measured files with uncommitted changes (or the result itself was taken on such a tree). */
  uncommitted: string[];
  /** Measured files changed since `commit` in their comments or types only (not stale for that). */
  unchangedCode: string[];
  stale: boolean;
}

const ALWAYS = ['package-lock.json'];
/** How many of the newest commits `--status` shows under a stale benchmark. */
const SHOWN = 3;

/** The lines git prints, untrimmed (a status line starts with a space when only the tree changed). */
function git(root: string, args: string[]): string[] {
  const out = execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return out.split('\n').filter((line) => line !== '');
}

function gitSucceeds(root: string, args: string[]): boolean {
  return spawnSync('git', args, { cwd: root, stdio: 'ignore' }).status === 0;
}

/**
 * A file's code as it runs: a TypeScript or JavaScript file as TypeScript emits it, comments and
 * types gone; any other file as it is. Undefined for a file that does not exist.
 */
export function runnable(file: string, text: string | undefined): string | undefined {
  if (text === undefined || !/\.[cm]?[jt]sx?$/.test(file)) return text;
  return ts.transpileModule(text, {
    fileName: file,
    compilerOptions: {
      removeComments: true,
      // As tsconfig.json has it: imports stay as written (a value import loads its module, used or not).
      verbatimModuleSyntax: true,
      target: ts.ScriptTarget.ESNext,
      module: ts.ModuleKind.ESNext,
      jsx: ts.JsxEmit.Preserve,
    },
  }).outputText;
}

/** Every file each benchmark measures, keyed by benchmark name, relative to the repository `root`. */
export async function measuredFiles(
  benchmarks: readonly Benchmark[] = BENCHMARKS,
  root = process.cwd(),
): Promise<Map<string, string[]>> {
  const roots = benchmarks.map((b) => [`bench/${b.name}.ts`, ...(b.entries ?? [])]);
  const tsConfigFile = path.join(root, 'tsconfig.json');
  const tsConfig = existsSync(tsConfigFile) ? extractTSConfig(tsConfigFile) : undefined;
  const { output } = await cruise(
    [...new Set(roots.flat())].filter((file) => existsSync(path.join(root, file))),
    {
      baseDir: root,
      doNotFollow: { path: 'node_modules' },
      tsPreCompilationDeps: true,
      ...(tsConfig === undefined ? {} : { tsConfig: { fileName: tsConfigFile } }),
    },
    undefined,
    tsConfig === undefined ? undefined : { tsConfig },
  );
  if (typeof output === 'string') throw new Error('dependency-cruiser returned a report, not a result');
  const imports = new Map<string, string[]>();
  for (const module of output.modules) {
    const local = module.dependencies.filter(
      (d) => !d.coreModule && !d.couldNotResolve && !d.resolved.includes('node_modules'),
    );
    imports.set(
      module.source,
      local.map((d) => d.resolved),
    );
  }
  const files = new Map<string, string[]>();
  for (const [index, bench] of benchmarks.entries()) {
    const seen = new Set<string>();
    // A directory entry (the console's sources) stands for every module in it.
    const queue = (roots[index] ?? []).flatMap((entry) => [
      entry,
      ...[...imports.keys()].filter((source) => source.startsWith(`${entry}/`)),
    ]);
    for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
      if (seen.has(file)) continue;
      seen.add(file);
      queue.push(...(imports.get(file) ?? []));
    }
    files.set(bench.name, [...seen, ...ALWAYS].sort());
  }
  return files;
}

/** How each benchmark's recorded result stands against the code it measures now. */
export async function freshness(
  benchmarks: readonly Benchmark[] = BENCHMARKS,
  root = process.cwd(),
): Promise<Freshness[]> {
  const files = await measuredFiles(benchmarks, root);
  // One look at the tree for all of them; a measured path is a file or (the console) a directory.
  const changed = git(root, ['status', '--porcelain']).map((line) => line.slice(3));
  // Benchmarks share most of their files: each version is read and emitted once.
  const seen = new Map<string, string | undefined>();
  const code = (rev: string, file: string) => {
    const key = `${rev}:${file}`;
    if (!seen.has(key)) {
      const shown = spawnSync('git', ['show', key], {
        cwd: root,
        encoding: 'utf8',
        maxBuffer: 256 * 1024 * 1024,
      });
      seen.set(key, runnable(file, shown.status === 0 ? shown.stdout : undefined));
    }
    return seen.get(key);
  };
  // A directory (an untracked one, as git status shows it) is new code as a whole.
  const codeInTree = (file: string) => {
    const full = path.join(root, file);
    if (!existsSync(full)) return undefined;
    return statSync(full).isDirectory() ? `(directory ${file})` : runnable(file, readFileSync(full, 'utf8'));
  };
  return benchmarks.map((bench) => {
    const resultFile = path.join(root, 'bench', 'results', `${bench.name}.json`);
    const measured = files.get(bench.name) ?? [];
    if (!existsSync(resultFile)) {
      return {
        name: bench.name,
        commit: undefined,
        date: undefined,
        commitsSince: [],
        uncommitted: [],
        unchangedCode: [],
        stale: true,
      };
    }
    const result = JSON.parse(readFileSync(resultFile, 'utf8')) as { commit: string; date: string };
    const [commit = '', dirty] = result.commit.split(' + ');
    // A commit this clone does not have (a shallow clone, a rewritten branch) cannot be compared.
    const known = commit !== '' && gitSucceeds(root, ['cat-file', '-e', `${commit}^{commit}`]);
    const touched = known ? git(root, ['diff', '--name-only', commit, 'HEAD', '--', ...measured]) : [];
    const moved = touched.filter((file) => code(commit, file) !== code('HEAD', file));
    const commitsSince = !known
      ? [`${commit || '(none)'} is not a commit of this clone`]
      : moved.length === 0
        ? []
        : git(root, ['log', '--format=%h %s', `${commit}..HEAD`, '--', ...moved]);
    const edited = changed.filter((file) => measured.some((m) => file === m || file.startsWith(`${m}/`)));
    const uncommitted = edited.filter((file) => codeInTree(file) !== code('HEAD', file));
    const unchangedCode = [
      ...new Set([
        ...touched.filter((f) => !moved.includes(f)),
        ...edited.filter((f) => !uncommitted.includes(f)),
      ]),
    ];
    if (dirty !== undefined) uncommitted.unshift(`(the result was taken with ${dirty})`);
    const stale = commitsSince.length > 0 || uncommitted.length > 0;
    return { name: bench.name, commit, date: result.date, commitsSince, uncommitted, unchangedCode, stale };
  });
}

/** One line per benchmark: its result's commit and whether the code it measures moved since. */
export function describe(rows: readonly Freshness[]): string {
  return rows
    .map((row) => {
      const head = `  ${row.name.padEnd(14)}`;
      if (row.commit === undefined) return `${head} no result yet`;
      const at = `measured at ${row.commit} (${row.date?.slice(0, 10) ?? '?'})`;
      const quiet =
        row.unchangedCode.length === 0
          ? ''
          : ` (comments or types changed since in ${row.unchangedCode.length} of its files)`;
      if (!row.stale) return `${head} ${at}, current${quiet}`;
      const moved = [
        row.commitsSince.length > 0
          ? `${row.commitsSince.length} ${row.commitsSince.length === 1 ? 'commit' : 'commits'} to its code since`
          : '',
        row.uncommitted.length > 0 ? 'uncommitted changes to its code' : '',
      ].filter((part) => part !== '');
      const newest = row.commitsSince
        .slice(0, SHOWN)
        .map((line) => `\n${' '.repeat(19)}${line.length > 100 ? `${line.slice(0, 99)}…` : line}`);
      const more = row.commitsSince.length > SHOWN ? `\n${' '.repeat(19)}...` : '';
      return `${head} ${at}, STALE: ${moved.join(', ')}${newest.join('')}${more}`;
    })
    .join('\n');
}

import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Lines naming the commit, the machine and the versions measured, printed by every benchmark. */
export function describeMachine(packages: string[]): string {
  const cpu = cpus();
  const versions = packages.map((name) => {
    const pkg = JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as {
      version: string;
    };
    return `${name} ${pkg.version}`;
  });
  return [
    `commit: ${commit()}`,
    `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB`,
    `node ${process.version}${versions.length === 0 ? '' : `; ${versions.join(', ')}`}`,
  ].join('\n');
}

/** The commit measured (docs/benchmarks.md names it with every figure), marked when the tree differs from it. */
export function commit(): string {
  const git = (...args: string[]) => spawnSync('git', args, { encoding: 'utf8' }).stdout.trim();
  const head = git('rev-parse', '--short', 'HEAD') || 'unknown';
  return git(
    'status',
    '--porcelain',
    '--untracked-files=no',
    '--',
    'src',
    'bench',
    'scripts',
    'package.json',
  ) === ''
    ? head
    : `${head} + uncommitted changes`;
}

/** Median of a non-empty list. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Starts a TypeScript server with tsx as a child with its output discarded; resolves once it says ready. */
export function startServer(entry: string, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = fork(entry, [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`${entry} exited with ${code} before it was ready`)));
  });
}

/** Stops a child started by {@link startServer} and waits for it to exit. */
export function stopServer(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** The `p`-th percentile (0–100, nearest rank) of a non-empty list; 0 for an empty one. */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] ?? 0;
}

/** Resolves after `ms` milliseconds (benchmarks pace real time; tests never do). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Installed version of a package whose `exports` hide `package.json` (lru-cache), read from the
 * `node_modules/<name>/` folder its entry point resolves into.
 */
export function packageVersion(name: string): string {
  const entry = require.resolve(name);
  const folder = `/node_modules/${name}/`;
  const at = entry.lastIndexOf(folder);
  if (at === -1) return 'unknown';
  const file = `${entry.slice(0, at + folder.length)}package.json`;
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

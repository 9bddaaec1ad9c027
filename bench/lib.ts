import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Environment variables a benchmark never inherits (they change what Bulwark or a peer does). */
export const INHERITED = /^(REDIS_URL|DATABASE_URL|SENTRY_DSN|LOG_LEVEL|NODE_ENV|PORT|BULWARK_.*)$/;

// A benchmark measures the code, not the caller's shell: a REDIS_URL or LOG_LEVEL left in the
// environment would silently change what the servers a benchmark starts do.
for (const key of Object.keys(process.env)) {
  if (INHERITED.test(key)) delete process.env[key];
}

/**
 * `BENCH_SMOKE=1` (set by `npm run bench -- --smoke`, which CI runs): every benchmark runs at tiny
 * sizes for a few seconds to prove it still works, prints its table and writes no result.
 */
export const SMOKE = process.env['BENCH_SMOKE'] === '1';

/** A number from the environment (a benchmark's size knob), or `fallback`; `smoke` replaces it in a smoke run. */
export function knob(name: string, fallback: number, smoke = fallback): number {
  const raw = process.env[name];
  if (raw !== undefined && raw !== '') {
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0)
      throw new Error(`${name} must be a positive number, got "${raw}"`);
    return value;
  }
  return SMOKE ? smoke : fallback;
}

/** What `bench/results/<name>.json` holds; `docs/benchmarks.md` is rendered from it (scripts/bench-doc.ts). */
export interface BenchResult {
  benchmark: string;
  commit: string;
  date: string;
  machine: { cores: number; cpu: string; memoryGiB: number; node: string };
  packages: Record<string, string>;
  /** The sizes and settings of the run (rounds, durations, connections, ...). */
  settings: Record<string, unknown>;
  /** Markdown (tables and sentences) the doc shows, exactly as the benchmark printed it. */
  markdown: string;
  /** Every measured figure, per round, for a reader who wants more than the medians. */
  data: unknown;
}

/**
 * Writes `bench/results/<benchmark>.json` unless this is a smoke run or `knobs` were changed from
 * their defaults (a run at other sizes is not the documented result). Returns whether it wrote.
 */
export function writeResult(
  result: Omit<BenchResult, 'commit' | 'date' | 'machine' | 'packages'> & { packages: string[] },
  knobsChanged: string[] = [],
): boolean {
  if (SMOKE) return false;
  const changed = knobsChanged.filter((name) => process.env[name] !== undefined);
  if (changed.length > 0) {
    console.log(`\nno result written: ${changed.join(', ')} changed from the defaults`);
    return false;
  }
  const cpu = cpus();
  const full: BenchResult = {
    benchmark: result.benchmark,
    commit: commit(),
    date: new Date().toISOString(),
    machine: {
      cores: cpu.length,
      cpu: cpu[0]?.model.trim() ?? 'unknown cpu',
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    packages: Object.fromEntries(result.packages.map((name) => [name, versionOf(name)])),
    settings: result.settings,
    markdown: result.markdown.trim(),
    data: result.data,
  };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/${result.benchmark}.json`, `${JSON.stringify(full, null, 2)}\n`);
  console.log(
    `\nwrote bench/results/${result.benchmark}.json (npm run bench:doc puts it in docs/benchmarks.md)`,
  );
  return true;
}

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

/**
 * The commit measured (docs/benchmarks.md names it with every figure), marked when the code differs
 * from it (results written by an earlier benchmark of the same `npm run bench` do not count).
 */
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
    ':(exclude)bench/results',
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

/**
 * Per-request times in ms (autocannon's `response` event gives each one from an hrtime pair), kept
 * in a growing typed array: percentiles at µs resolution, not autocannon's whole-ms histogram.
 */
export class Latencies {
  #times = new Float64Array(1 << 16);
  count = 0;

  push(ms: number): void {
    if (this.count === this.#times.length) {
      const grown = new Float64Array(this.#times.length * 2);
      grown.set(this.#times);
      this.#times = grown;
    }
    this.#times[this.count] = ms;
    this.count += 1;
  }

  /** The times pushed so far (a view, not a copy). */
  get values(): Float64Array {
    return this.#times.subarray(0, this.count);
  }

  /** The `p`-th percentile (nearest rank) in ms; 0 before any time. */
  percentile(p: number): number {
    return percentile(this.values, p);
  }
}

/** Resolves after `ms` milliseconds (benchmarks pace real time; tests never do). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Installed version of a package, through its `package.json` or, when `exports` hide that, its entry point. */
export function versionOf(name: string): string {
  try {
    return (JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as { version: string })
      .version;
  } catch {
    return packageVersion(name);
  }
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

const TICKS_PER_S = 100; // USER_HZ on Linux

/** The fields of `/proc/<pid>/stat` after the command name (field 3 onwards), or undefined when gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) the process has used so far; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  return fields === undefined ? 0 : (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S; // utime, stime
}

/** `root` and every process below it, from each process's parent in `/proc/<pid>/stat`. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = Number(statFields(Number(entry))?.[1]);
    if (Number.isInteger(parent)) children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i += 1) tree.push(...(children.get(tree[i] as number) ?? []));
  return tree;
}

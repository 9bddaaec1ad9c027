// CLI start-up: how long `bulwark <command>` takes from spawn to exit, and its peak RSS, against
// `node -e 0` in the same run. The built CLI as the bin runs it (bin/bulwark.js over dist/: a
// command from its V8 code cache, src/code-cache.ts, help from the ES module build) on a fresh
// SQLite data dir with the store migrated once before. The cache is in a directory of this run's
// own: the first command fills it (that first run, without a cache, is shown on its own line); the
// rounds then read it, as every run after the first does. Rounds rotate the order of the commands;
// prints the median, the spread (min–max) and the ratio to `node -e 0`. Targets: --help ≤ 2×, a read
// command ≤ 4×.
//   npm run bench:cli        (default: ROUNDS=15 runs each; writes bench/results/cli.json;
//                             a run with ROUNDS set writes no result)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeMachine, median, knob, writeResult } from './lib.js';

const ROUNDS = knob('ROUNDS', 15, 2);
const CLI = path.resolve('bin/bulwark.js');
const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-cli-'));
const env = {
  PATH: process.env['PATH'],
  HOME: process.env['HOME'],
  BULWARK_DATA_DIR: dir,
  XDG_CACHE_HOME: path.join(dir, 'cache'),
};

const commands: { name: string; args: string[] }[] = [
  { name: 'node -e 0', args: ['-e', '0'] },
  { name: 'bulwark --help', args: [CLI, '--help'] },
  { name: 'bulwark settings', args: [CLI, 'settings'] },
  { name: 'bulwark flags list', args: [CLI, 'flags', 'list'] },
  { name: 'bulwark queues list', args: [CLI, 'queues', 'list'] },
  { name: 'bulwark migrate status', args: [CLI, 'migrate', 'status'] },
];

/** One run under GNU time: wall milliseconds and peak RSS in MiB; throws when the command fails. */
function run(args: string[]): { ms: number; rssMiB: number } {
  const started = process.hrtime.bigint();
  const result = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, ...args], {
    env,
    encoding: 'utf8',
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  const kib = Number(result.stderr.trim().split('\n').at(-1));
  return { ms, rssMiB: kib / 1024 };
}

try {
  // The first command of all, without a code cache (it writes it).
  const first = run([CLI, 'migrate', 'up']);
  const samples = new Map(commands.map((c) => [c.name, { ms: [] as number[], rss: [] as number[] }]));
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate so no command always runs right after the same one.
    const order = commands.map((_, i) => commands[(i + round) % commands.length]!);
    for (const command of order) {
      const { ms, rssMiB } = run(command.args);
      samples.get(command.name)!.ms.push(ms);
      samples.get(command.name)!.rss.push(rssMiB);
    }
    process.stderr.write(`round ${round + 1}/${ROUNDS}\n`);
  }
  const base = median(samples.get('node -e 0')!.ms);
  console.log(describeMachine([]));
  const md = [
    `${ROUNDS} runs each, rotating order; wall time from spawn to exit, peak RSS (GNU time).`,
    '',
    '| command | median ms | min–max ms | × node -e 0 | RSS MiB (median) |',
    '|---|---|---|---|---|',
  ];
  md.push(
    `| bulwark migrate up, the first run (no code cache yet; once) | ${first.ms.toFixed(0)} | – | ${(first.ms / base).toFixed(2)} | ${first.rssMiB.toFixed(0)} |`,
  );
  for (const { name } of commands) {
    const { ms, rss } = samples.get(name)!;
    md.push(
      `| ${name} | ${median(ms).toFixed(0)} | ${Math.min(...ms).toFixed(0)}–${Math.max(...ms).toFixed(0)} | ${(median(ms) / base).toFixed(2)} | ${median(rss).toFixed(0)} |`,
    );
  }
  const markdown = md.join('\n');
  console.log(markdown);
  writeResult(
    {
      benchmark: 'cli',
      packages: [],
      settings: { rounds: ROUNDS },
      markdown,
      data: { first, ...Object.fromEntries(samples) },
    },
    ['ROUNDS'],
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

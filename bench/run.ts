// `npm run bench` runs every benchmark in turn; `npm run bench -- http queue` a subset;
// `npm run bench -- --smoke` every one at tiny sizes (CI runs that, so a benchmark that no longer
// runs fails CI); `--status` says which recorded figures are older than the code they measure and
// `--stale` runs only those (bench/stale.ts). Each benchmark prints its own table and writes
// bench/results/<name>.json; `npm run bench:doc` then renders docs/benchmarks.md's figures from
// those results.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { BENCHMARKS } from './benchmarks.js';
import { INHERITED } from './lib.js';
import { describe, freshness } from './stale.js';

const USAGE = `Usage: npm run bench [-- [--smoke | --stale | --status] [name ...]]

Runs the benchmarks in turn (all of them, or the ones named), each in a clean environment
(${INHERITED.source} are not inherited). Each prints its figures and writes
bench/results/<name>.json; then \`npm run bench:doc\` updates docs/benchmarks.md.

  --smoke   tiny sizes, a few seconds each, no result written (what CI runs)
  --status  for each benchmark, the commit its recorded figures name and whether a later commit
            (or an uncommitted change) touched the code it measures (comments and types alone
            do not count); runs nothing
  --stale   run only the benchmarks whose recorded figures are older than their code
  --help    this text

Benchmarks:
${BENCHMARKS.map((b) => `  ${b.name.padEnd(14)} ${b.what}`).join('\n')}
`;

const OPTIONS = ['--smoke', '--status', '--stale'];

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: 'inherit', env });
    child.once('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
    child.once('error', () => resolve(127));
  });
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const flags = argv.filter((a) => a.startsWith('-'));
  const names = argv.filter((a) => !a.startsWith('-'));
  const unknown = names.filter((n) => !BENCHMARKS.some((b) => b.name === n));
  const badFlags = flags.filter((a) => !OPTIONS.includes(a));
  if (unknown.length > 0 || badFlags.length > 0) {
    process.stderr.write(`unknown benchmark or option: ${[...unknown, ...badFlags].join(', ')}\n\n${USAGE}`);
    return 2;
  }
  if (new Set(flags).size > 1) {
    process.stderr.write(`choose one of ${OPTIONS.join(', ')}, not ${flags.join(' and ')}\n\n${USAGE}`);
    return 2;
  }
  const smoke = flags.includes('--smoke');
  let chosen = names.length === 0 ? BENCHMARKS : BENCHMARKS.filter((b) => names.includes(b.name));
  if (flags.includes('--status') || flags.includes('--stale')) {
    const rows = await freshness(chosen);
    process.stdout.write(`${describe(rows)}\n`);
    if (flags.includes('--status')) return 0;
    chosen = chosen.filter((b) => rows.some((row) => row.name === b.name && row.stale));
    if (chosen.length === 0) {
      process.stdout.write('\nevery recorded figure is from the code it measures: nothing to run\n');
      return 0;
    }
  }
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !INHERITED.test(key)),
  );
  if (smoke) env['BENCH_SMOKE'] = '1';
  // A smoke run (CI, right after `npm ci` built dist/) only builds when there is no build at all.
  if ((!smoke && chosen.some((b) => b.build === true)) || !existsSync('dist/index.js')) {
    process.stdout.write('== npm run build (some benchmarks run dist/)\n');
    if ((await run('npm', ['run', 'build', '--silent'], env)) !== 0) return 1;
  }
  const failed: string[] = [];
  const started = Date.now();
  for (const [index, bench] of chosen.entries()) {
    process.stdout.write(`\n== [${index + 1}/${chosen.length}] ${bench.name}: ${bench.what}\n`);
    const t0 = Date.now();
    const code = await run(process.execPath, ['--import', 'tsx', `bench/${bench.name}.ts`], env);
    const took = ((Date.now() - t0) / 1000).toFixed(0);
    process.stdout.write(`== ${bench.name}: ${code === 0 ? 'done' : `FAILED (exit ${code})`} in ${took} s\n`);
    if (code !== 0) failed.push(bench.name);
  }
  const total = ((Date.now() - started) / 1000).toFixed(0);
  process.stdout.write(
    failed.length === 0
      ? `\nall ${chosen.length} benchmarks ran in ${total} s\n`
      : `\n${failed.length} of ${chosen.length} benchmarks failed: ${failed.join(', ')}\n`,
  );
  return failed.length === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));

// Renders docs/benchmarks.md's measured figures from bench/results/*.json. The doc holds, for each
// result, a block between `<!-- result:<name> -->` and `<!-- /result:<name> -->`; everything
// inside is generated (the commit, date and machine line, then the benchmark's own markdown), so a
// figure in the doc always names the commit it came from. test/benchmarks-doc.test.ts fails when the
// doc and the results disagree.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import prettier from 'prettier';
import type { BenchResult } from './lib.js';

const BLOCK = /<!-- result:([a-z-]+) -->[\s\S]*?<!-- \/result:\1 -->/g;

/** Every `bench/results/*.json` that is a result of the shared shape (has `benchmark` and `markdown`). */
export function readResults(dir = 'bench/results'): BenchResult[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .map((file) => JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Partial<BenchResult>)
    .filter((r): r is BenchResult => typeof r.benchmark === 'string' && typeof r.markdown === 'string');
}

/** The generated text of one block. */
export function renderBlock(result: BenchResult): string {
  const packages = Object.entries(result.packages)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
  const m = result.machine;
  return [
    `<!-- result:${result.benchmark} -->`,
    '',
    `_Measured at commit \`${result.commit}\` on ${result.date.slice(0, 10)}: ${m.cores} × ${m.cpu}, ` +
      `${m.memoryGiB} GiB, node ${m.node}${packages === '' ? '' : `; ${packages}`}. ` +
      `Raw figures: \`bench/results/${result.benchmark}.json\`._`,
    '',
    result.markdown,
    '',
    `<!-- /result:${result.benchmark} -->`,
  ].join('\n');
}

/**
 * The doc with every result block re-rendered and formatted as `prettier --check` wants it. Throws
 * when a result has no block in the doc or a block has no result.
 */
export async function renderDoc(doc: string, results: BenchResult[], file: string): Promise<string> {
  const byName = new Map(results.map((r) => [r.benchmark, r]));
  const seen = new Set<string>();
  const replaced = doc.replace(BLOCK, (_whole, name: string) => {
    const result = byName.get(name);
    if (result === undefined)
      throw new Error(`${file} has a block for "${name}" but there is no result for it`);
    seen.add(name);
    return renderBlock(result);
  });
  const missing = results.filter((r) => !seen.has(r.benchmark)).map((r) => r.benchmark);
  if (missing.length > 0) {
    throw new Error(`${file} has no <!-- result:NAME --> block for: ${missing.join(', ')}`);
  }
  const options = (await prettier.resolveConfig(file)) ?? {};
  return prettier.format(replaced, { ...options, filepath: file });
}

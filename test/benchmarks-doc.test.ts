import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BENCHMARKS } from '../bench/benchmarks.js';
import { readResults, renderBlock, renderDoc } from '../bench/doc-render.js';
import type { BenchResult } from '../bench/lib.js';

const DOC = 'docs/benchmarks.md';
/** Modules of bench/ that are not benchmarks themselves. */
const SUPPORT = new Set([
  'lib',
  'run',
  'doc',
  'doc-render',
  'benchmarks',
  'canary',
  'gc-stats',
  'open-load',
  'overload-chart',
  'overload-report',
  'redis-stats',
  'spin-streams',
  'stale',
]);

describe('docs/benchmarks.md and bench/results', () => {
  it('the doc holds exactly what `npm run bench:doc` renders from the results (each figure names its commit)', async () => {
    const doc = readFileSync(DOC, 'utf8');
    expect(await renderDoc(doc, readResults(), DOC)).toBe(doc);
  });

  it('every result file has the shared shape: benchmark, commit, date, machine, markdown', () => {
    const files = readdirSync('bench/results').filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const result = JSON.parse(readFileSync(`bench/results/${file}`, 'utf8')) as BenchResult;
      expect(file).toBe(`${result.benchmark}.json`);
      expect(result.commit).toMatch(/^[0-9a-f]{7,}$/); // measured on a committed tree
      expect(Number.isNaN(Date.parse(result.date))).toBe(false);
      expect(result.machine.cores).toBeGreaterThan(0);
      expect(result.markdown.length).toBeGreaterThan(0);
    }
  });

  it('a result block names the commit, date and machine of its run', () => {
    const block = renderBlock({
      benchmark: 'x',
      commit: 'abc1234',
      date: '2026-12-03T10:00:00.000Z',
      machine: { cores: 2, cpu: 'CPU', memoryGiB: 24, node: 'v20.20.2' },
      packages: { fastify: '5.12.8' },
      settings: {},
      markdown: '| a |\n|---|\n| 1 |',
      data: null,
    });
    expect(block).toContain('commit `abc1234` on 2026-12-03: 2 × CPU, 24 GiB, node v20.20.2; fastify 5.12.8');
  });

  it('renders nothing silently: a block without a result, or a result without a block, is an error', async () => {
    const results = readResults();
    await expect(renderDoc('<!-- result:nope -->\n<!-- /result:nope -->\n', results, DOC)).rejects.toThrow(
      /no result for it/,
    );
    if (results.length > 0)
      await expect(renderDoc('# Benchmarks\n', results, DOC)).rejects.toThrow(/no <!-- result/);
  });

  it('`npm run bench` runs every benchmark in bench/, each also has its own npm script', () => {
    const files = readdirSync('bench')
      .filter((f) => f.endsWith('.ts'))
      .map((f) => f.slice(0, -3))
      .filter((name) => !SUPPORT.has(name));
    expect(BENCHMARKS.map((b) => b.name).sort()).toEqual(files.sort());
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> })
      .scripts;
    for (const { name } of BENCHMARKS) expect(scripts[`bench:${name}`], `bench:${name}`).toBeDefined();
  });

  it('a benchmark that runs the build (dist/ or the bin) builds first, under `npm run bench` and its own script', () => {
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> })
      .scripts;
    const runsBuild = BENCHMARKS.filter((b) =>
      /['`]dist\/|bin\/bulwark\.js/.test(readFileSync(`bench/${b.name}.ts`, 'utf8')),
    );
    expect(runsBuild.map((b) => b.name).sort()).toEqual(['cli', 'console', 'spin', 'startup', 'supervisor']);
    for (const bench of runsBuild) {
      expect(bench.build, bench.name).toBe(true);
      expect(scripts[`bench:${bench.name}`], bench.name).toMatch(/^npm run build --silent && /);
    }
  });
});

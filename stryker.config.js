// Mutation testing of the core logic (`npm run mutate`; not part of `npm test` nor CI): Stryker
// changes one operator, condition or constant at a time in the modules below and runs their unit
// tests (vitest.mutate.config.ts); a mutant no test notices shows behaviour nothing checks.
// How to run it and read the report, and the scores per module: docs/testing.md.
import process from 'node:process';

/** Minimum mutation score (%) of every module; `npm run mutate` exits 1 below it. */
const MODULE_BREAK = 80;

/**
 * The modules, each as the files (or line ranges: `file:first-last`) mutated for it. Line ranges keep
 * the mutation to one concern of a larger file; shift them when the file changes.
 */
const MODULES = {
  'failover engine': ['src/failover/engine.ts'],
  // The live-instance count, and the share of the limit it sizes.
  'rate-limit share': [
    'src/ratelimit/instances.ts',
    'src/ratelimit/limiter.ts:80-80',
    'src/ratelimit/limiter.ts:88-88',
    'src/ratelimit/limiter.ts:115-126',
    'src/ratelimit/limiter.ts:129-131',
    'src/ratelimit/limiter.ts:179-181',
    'src/ratelimit/limiter.ts:227-229',
  ],
  'rollout buckets': ['src/flags/bucket.ts'],
  'alert rule state machine': ['src/alerts/rules.ts'],
  // Its backoff is part of it.
  'supervisor restart policy': ['src/supervisor/policy.ts'],
  // The journal, the replay plan, and the replay itself and its start on failback.
  'cache journal replay order': [
    'src/cache/journal.ts',
    'src/cache/replay.ts',
    'src/cache/tiered.ts:105-115',
    'src/cache/tiered.ts:288-323',
  ],
};

const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);

/**
 * Prints the mutation score of each module (Stryker's own table is per file, and a module may span
 * files) and sets exit code 1 when one is below {@link MODULE_BREAK}.
 */
class ModuleScoreReporter {
  onMutationTestReportReady(report) {
    const rows = Object.entries(MODULES).map(([name, specs]) => {
      const files = new Set(specs.map((spec) => spec.replace(/:\d+-\d+$/, '')));
      let detected = 0;
      let undetected = 0;
      for (const [file, result] of Object.entries(report.files)) {
        if (!files.has(file)) continue;
        for (const mutant of result.mutants) {
          if (DETECTED.has(mutant.status)) detected += 1;
          else if (UNDETECTED.has(mutant.status)) undetected += 1;
        }
      }
      const total = detected + undetected;
      return { name, detected, undetected, score: total === 0 ? NaN : (100 * detected) / total };
    });
    const lines = [
      '',
      'Mutation score per module (killed + timeout) / (killed + timeout + survived + no coverage):',
    ];
    for (const row of rows) {
      const flag = row.score < MODULE_BREAK ? `  < ${MODULE_BREAK}` : '';
      lines.push(
        `  ${row.name.padEnd(28)} ${(Number.isNaN(row.score) ? 'n/a' : row.score.toFixed(2)).padStart(6)} %  (${row.detected} detected, ${row.undetected} undetected)${flag}`,
      );
    }
    process.stdout.write(`${lines.join('\n')}\n\n`);
    if (rows.some((row) => row.score < MODULE_BREAK)) process.exitCode = 1;
  }
}

// Loaded by Stryker as a plugin through `appendPlugins` below (the shape of `declareClassPlugin`).
export const strykerPlugins = [
  { kind: 'Reporter', name: 'module-scores', injectableClass: ModuleScoreReporter },
];

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  mutate: Object.values(MODULES).flat(),
  coverageAnalysis: 'perTest',
  // Two test runners (a full run takes ~20 min with one on a 2-core machine); on a machine busy with
  // other work, `npm run mutate -- --concurrency 1`. Runners share no port, key or file.
  concurrency: 2,
  // A loaded machine slows the fake-timer tests down; a mutant is a timeout only well past that.
  timeoutMS: 20_000,
  ignorePatterns: ['dist', 'data', 'coverage', 'reports', '.tmp', 'bench'],
  appendPlugins: ['./stryker.config.js'],
  reporters: ['clear-text', 'progress', 'html', 'json', 'module-scores'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  // `npm run mutate -- --incremental` reuses the results of unchanged code and tests (not committed).
  incrementalFile: 'reports/mutation/incremental.json',
  tempDirName: '.stryker-tmp',
  thresholds: { high: 90, low: MODULE_BREAK, break: MODULE_BREAK },
};

// Mutation testing of the core logic (`npm run mutate`; not part of `npm test` nor CI): Stryker
// changes one operator, condition or constant at a time in the modules below and runs their unit
// tests (vitest.mutate.config.ts); a mutant no test notices shows behaviour nothing checks.
// How to run it and read the report, and the scores per module: docs/testing.md.

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  // Line ranges keep the mutation to one concern of a larger file; shift them when the file changes.
  mutate: [
    // failover engine
    'src/failover/engine.ts',
    // rate-limit share: the live-instance count, and the share of the limit it sizes
    'src/ratelimit/instances.ts',
    'src/ratelimit/limiter.ts:80-80',
    'src/ratelimit/limiter.ts:88-88',
    'src/ratelimit/limiter.ts:115-126',
    'src/ratelimit/limiter.ts:129-131',
    'src/ratelimit/limiter.ts:179-181',
    'src/ratelimit/limiter.ts:227-229',
    // rollout buckets
    'src/flags/bucket.ts',
    // alert rule state machine
    'src/alerts/rules.ts',
    // supervisor restart policy (its backoff is part of it)
    'src/supervisor/policy.ts',
    // cache journal, the replay plan, and the replay itself and its start on failback
    'src/cache/journal.ts',
    'src/cache/tiered.ts:96-98',
    'src/cache/tiered.ts:248-294',
  ],
  coverageAnalysis: 'perTest',
  // The machine is shared: one test runner at a time.
  concurrency: 1,
  // A loaded machine slows the fake-timer tests down; a mutant is a timeout only well past that.
  timeoutMS: 20_000,
  ignorePatterns: ['dist', 'data', 'coverage', 'reports', '.tmp', 'bench'],
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  // `npm run mutate -- --incremental` reuses the results of unchanged code and tests (not committed).
  incrementalFile: 'reports/mutation/incremental.json',
  tempDirName: '.stryker-tmp',
  thresholds: { high: 90, low: 80, break: 80 },
};

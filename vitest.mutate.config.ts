import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The test files `npm run mutate` (Stryker, see stryker.config.js) runs against each mutant: the
 * unit tests of the mutated modules only. They need no server, or one redis-server started by the
 * file itself, so that a few hundred mutant runs fit in minutes on a 2-core machine.
 */
export default defineConfig({
  // Not mergeConfig: it would append these files to the base config's include instead of replacing it.
  test: {
    ...base.test,
    // A mutant that makes a test wait forever fails it here, well before Stryker's own timeout,
    // which would also restart the test runner (the unit tests take milliseconds, a few seconds).
    testTimeout: 10_000,
    include: [
      // failover engine
      'test/failover.test.ts',
      'test/failover-engine.test.ts',
      // rate-limit share
      'test/ratelimit-share-units.test.ts',
      // rollout buckets
      'test/flags-bucket.test.ts',
      'test/flags-evaluate.test.ts',
      // alert rule state machine
      'test/alerts-rules.test.ts',
      'test/alerts-rule-transitions.test.ts',
      // supervisor restart policy (supervisor-units.test.ts also tests options and socket paths)
      'test/supervisor-policy.test.ts',
      // cache journal and replay order
      'test/cache-tiered.test.ts',
      'test/cache-journal.test.ts',
    ],
  },
});

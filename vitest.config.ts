import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    reporters: ['verbose'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Test files run one at a time: several of them put a machine-wide HTTP load on real servers
    // (outage, flapping, multi-process tests), and two such loads at once on a 2-core machine push
    // Redis replies past the failover deadline, which is a different scenario from the one tested.
    fileParallelism: false,
  },
});

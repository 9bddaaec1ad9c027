/**
 * One benchmark: `bench/<name>.ts`. `entries` are the other programs it runs or loads (servers it
 * starts, the built CLI or app by their sources, the build that bundles them); with the benchmark's
 * own file and all they import, they are the code its figures measure (bench/stale.ts).
 */
export interface Benchmark {
  name: string;
  what: string;
  /** Runs `dist/` (the app, Spin, the CLI or the console as built), so `npm run bench` builds first. */
  build?: boolean;
  /** Other programs it starts or loads, by their sources (see above). */
  entries?: string[];
}

const BUILT = ['scripts/bundle.js', 'src/code-cache.ts'];
const CLI = ['bin/bulwark.js', 'src/cli/main.ts', ...BUILT];

/** Every benchmark, in the order `npm run bench` runs them. */
export const BENCHMARKS: Benchmark[] = [
  {
    name: 'http',
    what: 'HTTP overhead: Bulwark vs bare Fastify vs the usual Fastify stack',
    entries: [
      'bench/servers/bare.ts',
      'bench/servers/stack.ts',
      'bench/servers/bulwark.ts',
      'bench/fixtures/canary.js',
    ],
  },
  {
    name: 'cost',
    what: 'CPU per request of each layer of the protected path',
    entries: ['bench/servers/bare.ts', 'bench/servers/bulwark.ts'],
  },
  { name: 'logging', what: 'the request log line' },
  { name: 'cache', what: 'cache reads: L1, L2 on Redis, against lru-cache and ioredis' },
  { name: 'ratelimit', what: 'rate-limit checks against rate-limiter-flexible' },
  {
    name: 'failover',
    what: 'the request path through a Redis outage',
    entries: ['bench/servers/cached.ts', 'bench/fixtures/canary.js'],
  },
  { name: 'queue', what: 'job throughput against raw BullMQ' },
  { name: 'flags', what: 'flag propagation between instances', entries: ['bench/servers/flag-instance.ts'] },
  { name: 'errors', what: 'error capture against @sentry/node' },
  {
    name: 'outbound',
    what: 'outbound calls through a failing upstream',
    entries: ['bench/servers/outbound-upstream.ts'],
  },
  {
    name: 'overload',
    what: 'load shedding at several times the capacity',
    entries: ['bench/servers/overload.ts'],
  },
  {
    name: 'supervisor',
    build: true,
    what: 'the supervisor against PM2',
    entries: ['bench/fixtures/supervisor-app.js', ...CLI],
  },
  {
    name: 'startup',
    build: true,
    what: 'start-up time',
    entries: ['bench/fixtures/bare-fastify.js', 'src/app/server.ts', ...BUILT],
  },
  { name: 'cli', build: true, what: 'CLI start-up', entries: CLI },
  {
    name: 'console',
    build: true,
    what: 'the admin console with large data',
    entries: ['console/src', 'console/vite.config.ts'],
  },
  { name: 'admin-refused', what: 'refused admin requests', entries: ['bench/servers/bulwark.ts'] },
  {
    name: 'spin',
    build: true,
    what: 'Spin under load',
    entries: ['bench/spin-streams.ts', 'examples/spin/src/server.ts', ...BUILT],
  },
];

// Error capture cost: `bulwark.errors.capture()` (grouping in memory, one batched write per second
// to SQLite) against Sentry's own capture (`@sentry/node` 11 NodeClient + Scope, sending to a local
// HTTP sink that answers 200), alternating A/B over rounds. Prints the median µs per capture and
// the ratio, and the heap held after the run. 100 distinct errors (20 messages × 5 call sites)
// so that grouping and templating do real work.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as Sentry from '@sentry/node';
import pino from 'pino';
import { createStore } from '../src/runtime/store.js';
import { ErrorStore, ErrorTracker } from '../src/tracker/index.js';
import { describeMachine, median, knob } from './lib.js';

const ROUNDS = knob('ROUNDS', 7, 1);
const PER_ROUND = knob('PER_ROUND', 20_000, 500);

const sink = http.createServer((request, response) => {
  request.resume();
  request.on('end', () => response.writeHead(200).end('{}'));
});
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
const dsn = `http://key@127.0.0.1:${(sink.address() as AddressInfo).port}/1`;

const store = await createStore({ sqliteFile: ':memory:' });
const tracker = new ErrorTracker({
  errors: new ErrorStore(store.db),
  audit: store.audit,
  logger: pino({ level: 'silent' }),
  flags: { isEnabled: (_key, _context, fallback = false) => fallback },
  release: 'bench',
});
const client = new Sentry.NodeClient({
  dsn,
  transport: Sentry.makeNodeTransport,
  stackParser: Sentry.defaultStackParser,
  integrations: [],
  sendClientReports: false,
});
const scope = new Sentry.Scope();
scope.setClient(client);
client.init();

// Errors thrown from different call sites, with ids in their messages.
const sites = [
  (i: number) => new Error(`User ${i} not found`),
  (i: number) => new TypeError(`Cannot read order ${i}`),
  (i: number) => new RangeError(`Quota ${i} exceeded for "tenant-${i}"`),
  (i: number) => new Error(`Payment ${i} declined by provider`),
  (i: number) => new Error(`Timeout after ${i} ms talking to https://api.example/${i}`),
];
const errors = Array.from({ length: 100 }, (_, i) => sites[i % 5]?.(i % 20) ?? new Error('x'));
const context = {
  request: { method: 'GET', route: '/orders/:id', status: 500, requestId: 'r1' },
  user: { id: 'u1' },
};

function run(capture: (error: Error) => void): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < PER_ROUND; i++) capture(errors[i % errors.length] ?? new Error('x'));
  return Number(process.hrtime.bigint() - started) / 1_000 / PER_ROUND;
}

const bulwarkUs: number[] = [];
const sentryUs: number[] = [];
console.error(`error capture: ${ROUNDS} rounds × ${PER_ROUND} captures, alternating`);
for (let round = 0; round < ROUNDS; round++) {
  bulwarkUs.push(run((error) => tracker.capture(error, context)));
  await tracker.flush();
  sentryUs.push(
    run((error) => {
      scope.captureException(error, { mechanism: { type: 'bench', handled: true } });
    }),
  );
  await client.flush(5_000);
  console.error(
    `  round ${round + 1}: bulwark ${bulwarkUs.at(-1)?.toFixed(2)} µs, sentry ${sentryUs.at(-1)?.toFixed(2)} µs`,
  );
}
await tracker.close();
const groups = await tracker.groups({ limit: 500 });
globalThis.gc?.();
const heapMb = process.memoryUsage().heapUsed / 1_048_576;

console.log(describeMachine(['@sentry/node']));
console.log('');
console.log('| capture | median µs per capture | vs Sentry |');
console.log('|---|---|---|');
const b = median(bulwarkUs);
const s = median(sentryUs);
console.log(
  `| bulwark.errors.capture (grouped, batched to SQLite) | ${b.toFixed(2)} | ${(b / s).toFixed(2)}× |`,
);
console.log(`| @sentry/node scope.captureException (local sink) | ${s.toFixed(2)} | 1.00× |`);
console.log('');
console.log(
  `groups stored: ${groups.length} (expected 100 distinct errors → ${new Set(groups.map((g) => g.message)).size} templates); heap after: ${heapMb.toFixed(1)} MiB`,
);
await client.close(2_000);
await store.close();
sink.close();

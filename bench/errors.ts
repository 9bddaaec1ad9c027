// Error capture cost: `bulwark.errors.capture()` from `createBulwark()` (its real flag service on
// the store: the `bulwark.errors` and `bulwark.errors.sample` flags evaluated per capture; grouping
// in memory, one batched write per second to SQLite) against Sentry's own capture (`@sentry/node`
// NodeClient with its request-data and dedupe integrations, sending to a local HTTP sink that
// answers 200). Every capture is a new Error, thrown and caught just before the timed loop, from one
// of 200 generated call sites (distinct functions, depths and messages with ids), so no object is
// ever captured twice (`@sentry/core` returns early for an object it already captured) and both
// sides format and parse a stack they have not seen before. Each capture carries request and user
// context on both sides. Rounds alternate which side goes first. Prints medians, spread, the ratio
// and how many occurrences each side counted.
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as Sentry from '@sentry/node';
import { createBulwark } from '../src/runtime/create.js';
import type { CaptureContext } from '../src/tracker/index.js';
import { describeMachine, median, knob, writeResult } from './lib.js';

const ROUNDS = knob('ROUNDS', 8, 2);
const PER_ROUND = knob('PER_ROUND', 20_000, 500);
const SITES = 200;
const PACKAGES = ['@sentry/node', '@sentry/core'];

const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-errors-'));

// 200 call sites in a generated module: each its own function on its own line, one to three
// frames deep, throwing one of 5 error types with one of 10 messages carrying ids.
const MESSAGES = [
  'User ${id} not found',
  'Cannot read order ${id}',
  'Quota ${id} exceeded for "tenant-${id % 97}"',
  'Payment ${id} declined by provider',
  'Timeout after ${id % 5000} ms talking to https://api.example/${id}',
  'Invoice ${id} is already closed',
  'Session ${id} expired',
  'Cart ${id} holds ${id % 40} items, more than allowed',
  'Upstream answered 502 for request ${id}',
  'Lock on account ${id} not acquired',
];
const TYPES = ['Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError'];
const source = Array.from({ length: SITES }, (_, k) => {
  const thrower = `function site${k}Throw(id) { throw new ${TYPES[k % TYPES.length]}(\`${MESSAGES[k % MESSAGES.length]}\`); }`;
  const depth = k % 3;
  const chain = Array.from(
    { length: depth },
    (_x, d) =>
      `function site${k}Level${d}(id) { return ${d === depth - 1 ? `site${k}Throw` : `site${k}Level${d + 1}`}(id); }`,
  );
  return [
    thrower,
    ...chain,
    `export const site${k} = ${depth === 0 ? `site${k}Throw` : `site${k}Level0`};`,
  ].join('\n');
}).join('\n');
const sitesFile = path.join(dir, 'sites.mjs');
writeFileSync(
  sitesFile,
  `${source}\nexport const sites = [${Array.from({ length: SITES }, (_, k) => `site${k}`).join(', ')}];\n`,
);
const { sites } = (await import(pathToFileURL(sitesFile).href)) as { sites: ((id: number) => never)[] };

/** `n` fresh errors, each thrown and caught, from the sites in turn, with ids from `seed`. */
function freshErrors(n: number, seed: number): Error[] {
  const errors: Error[] = [];
  for (let i = 0; i < n; i += 1) {
    try {
      sites[i % SITES]!(seed + i);
    } catch (error) {
      errors.push(error as Error);
    }
  }
  return errors;
}

/** What a request handler would know: the request and the signed-in user, one per capture. */
function requestOf(i: number) {
  return {
    method: i % 4 === 0 ? 'POST' : 'GET',
    route: '/orders/:id',
    url: `/orders/${i}`,
    status: 500,
    requestId: `req-${i}`,
    user: { id: `user-${i % 5000}`, username: `name-${i % 5000}` },
  };
}

let sinkEvents = 0;
const sink = http.createServer((request, response) => {
  request.resume();
  request.on('end', () => {
    sinkEvents += 1;
    response.writeHead(200).end('{}');
  });
});
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
const dsn = `http://key@127.0.0.1:${(sink.address() as AddressInfo).port}/1`;

const bulwark = await createBulwark({ env: { BULWARK_DATA_DIR: dir, LOG_LEVEL: 'error' } });
const client = new Sentry.NodeClient({
  dsn,
  transport: Sentry.makeNodeTransport,
  stackParser: Sentry.defaultStackParser,
  integrations: [Sentry.requestDataIntegration(), Sentry.dedupeIntegration()],
  sendClientReports: false,
});
const base = new Sentry.Scope();
base.setClient(client);
client.init();

/** Bulwark: the context objects a request handler passes, made before the clock starts. */
function bulwarkRound(errors: Error[], seed: number): number {
  const contexts: CaptureContext[] = errors.map((_e, i) => {
    const r = requestOf(seed + i);
    return {
      request: { method: r.method, route: r.route, status: r.status, requestId: r.requestId },
      user: r.user,
    };
  });
  const started = process.hrtime.bigint();
  for (let i = 0; i < errors.length; i += 1) bulwark.errors.capture(errors[i]!, contexts[i]);
  return Number(process.hrtime.bigint() - started) / 1_000 / errors.length;
}

/** Sentry: a scope per request holding the user and the request (as its HTTP integration sets it), made before the clock starts. */
function sentryRound(errors: Error[], seed: number): number {
  const scopes = errors.map((_e, i) => {
    const r = requestOf(seed + i);
    const scope = base.clone();
    scope.setUser(r.user);
    scope.setTag('route', r.route);
    scope.setSDKProcessingMetadata({
      normalizedRequest: {
        method: r.method,
        url: `http://127.0.0.1${r.url}`,
        headers: { 'x-request-id': r.requestId },
      },
    });
    return scope;
  });
  const started = process.hrtime.bigint();
  for (let i = 0; i < errors.length; i += 1)
    scopes[i]!.captureException(errors[i]!, { mechanism: { type: 'bench', handled: true } });
  return Number(process.hrtime.bigint() - started) / 1_000 / errors.length;
}

console.log(describeMachine(PACKAGES));
console.log(
  `error capture: ${ROUNDS} rounds × ${PER_ROUND} captures per side, each a fresh Error from ${SITES} call sites, alternating who goes first`,
);
const bulwarkUs: number[] = [];
const sentryUs: number[] = [];
let seed = 0;
// One warm-up round each (JIT, the first sight of each site), not counted; its ids have as many
// digits as the rounds' (a 10-digit id templates as <hex>, which would make other groups).
bulwarkRound(freshErrors(SITES * 5, 500_000), 500_000);
sentryRound(freshErrors(SITES * 5, 600_000), 600_000);
await bulwark.errors.flush();
await client.flush(10_000);
const warmupEvents = sinkEvents;
for (let round = 0; round < ROUNDS; round += 1) {
  const sides = round % 2 === 0 ? (['bulwark', 'sentry'] as const) : (['sentry', 'bulwark'] as const);
  for (const side of sides) {
    const errors = freshErrors(PER_ROUND, seed);
    if (side === 'bulwark') {
      bulwarkUs.push(bulwarkRound(errors, seed));
      await bulwark.errors.flush();
    } else {
      sentryUs.push(sentryRound(errors, seed));
      await client.flush(10_000);
    }
    seed += PER_ROUND;
  }
  console.log(
    `  round ${round + 1} (${sides[0]} first): bulwark ${bulwarkUs.at(-1)?.toFixed(2)} µs, sentry ${sentryUs.at(-1)?.toFixed(2)} µs`,
  );
}
const groups = await bulwark.errors.groups({ limit: 1000 });
const counted = groups.reduce((sum, g) => sum + g.count, 0) - SITES * 5; // less the warm-up
const captures = ROUNDS * PER_ROUND;
const sentryEvents = sinkEvents - warmupEvents;

const b = median(bulwarkUs);
const s = median(sentryUs);
const spread = (values: number[]) => `${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)}`;
const fmt = (n: number) => n.toLocaleString('en');
const markdown = [
  `${ROUNDS} rounds × ${fmt(PER_ROUND)} captures per side, each capture a new Error thrown from one of ` +
    `${SITES} generated call sites (5 types, 10 messages with ids, 1–3 frames deep), with request and ` +
    `user context; the side that goes first alternates per round; one warm-up round each. Medians of ` +
    `the per-round mean, spread min–max.`,
  '',
  '| capture | median µs per capture | spread | vs Sentry | occurrences counted |',
  '|---|---|---|---|---|',
  `| \`bulwark.errors.capture\` (\`createBulwark()\`, real flags, grouped, batched to SQLite) | ${b.toFixed(2)} | ${spread(bulwarkUs)} | ${(b / s).toFixed(2)}× | ${fmt(counted)} of ${fmt(captures)} in ${fmt(groups.length)} groups |`,
  `| \`@sentry/node\` \`scope.captureException\` (request data, dedupe, local sink) | ${s.toFixed(2)} | ${spread(sentryUs)} | 1.00× | ${fmt(sentryEvents)} of ${fmt(captures)} events reached the sink |`,
].join('\n');
console.log(`\n${markdown}`);
writeResult(
  {
    benchmark: 'errors',
    packages: PACKAGES,
    settings: { rounds: ROUNDS, perRound: PER_ROUND, sites: SITES },
    markdown,
    data: { bulwarkUs, sentryUs, counted, groups: groups.length, captures, sentryEvents },
  },
  ['ROUNDS', 'PER_ROUND'],
);
await client.close(2_000);
await bulwark.close();
sink.close();
rmSync(dir, { recursive: true, force: true });

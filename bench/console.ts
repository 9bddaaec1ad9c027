// The admin console with large data: a store seeded with 1,000 flags, 10,000 jobs (a tenth of them
// dead), 1,000 error groups, 1,000 alert rules and 7 days of metrics history; then, for every page, the server time of
// the admin API answers it loads (Fastify's elapsed time from the request's arrival to the end of
// its answer, median and max of 20) and the time Chromium takes from navigation to the page shown
// with its data (median of 5), and the JavaScript the page loads (gzipped). Targets (issue 14):
// ≤ 100 ms server time, ≤ 1 s to render, ≤ 200 rows an answer, ≤ 100 KB of JavaScript gzipped.
//
// `npm run bench:console` (needs the built console: `npm run build`; Debian's chromium). Its sizes
// are fixed (the ones above, no knobs; a smoke run uses them too and writes nothing); a full run
// writes bench/results/console.json.
// `-- --screenshots <dir>` also saves a screenshot of every page (docs/images/console/).
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import Fastify from 'fastify';
import { chromium, type Response } from 'playwright-core';
import { consoleDir } from '../src/admin/console.js';
import { bulwark as plugin, fastifyOptions } from '../src/http/plugin.js';
import { PointStore } from '../src/metrics/history-store.js';
import { createBulwark } from '../src/runtime/create.js';
import { CHROMIUM_ARGS } from '../test/helpers/chromium.js';
import { describeMachine, median, writeResult } from './lib.js';

const KEY = 'bench-console-admin-key-0123456789';
const at = process.argv.indexOf('--screenshots');
const screenshots = at === -1 ? undefined : path.resolve(process.argv[at + 1] ?? 'docs/images/console');
const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-console-'));
const built = consoleDir();
if (built === undefined) throw new Error('dist/console is missing: run `npm run build` first');

// 1,000 alert rules (their states are written below: evaluating 1,000 rules into states is not
// what this measures), no receiver reachable.
const ALERT_RULES = 1_000;
const bulwark = await createBulwark({
  env: { BULWARK_DATA_DIR: dir, BULWARK_ADMIN_KEY: KEY, LOG_LEVEL: 'error' },
  serviceId: 'bench-console',
  alerts: {
    defaultRules: false,
    evaluateEveryMs: 3_600_000,
    receivers: [{ name: 'ops', type: 'webhook', url: 'http://127.0.0.1:9/hook' }],
    rules: Array.from({ length: ALERT_RULES }, (_, i) => ({
      id: `rule-${String(i).padStart(4, '0')}`,
      kind: 'threshold' as const,
      series: 'process.rss_bytes',
      fireAbove: 1e12,
      severity: i % 10 === 0 ? ('critical' as const) : ('warning' as const),
      summary: `Rule ${i} of the bench`,
      labels: { team: i % 3 === 0 ? 'core' : 'edge' },
    })),
  },
});
const app = Fastify(fastifyOptions(bulwark));
/** Server time of each admin API answer, by route template. */
const serverMs = new Map<string, number[]>();
app.addHook('onResponse', async (request, reply) => {
  const route = request.routeOptions.url ?? 'unmatched';
  if (!route.startsWith('/admin/api/')) return;
  const list = serverMs.get(route) ?? [];
  list.push(reply.elapsedTime);
  serverMs.set(route, list);
});
await app.register(plugin, { bulwark });
app.addHook('onClose', async () => bulwark.close());
await app.listen({ host: '127.0.0.1', port: 0 });
const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;

// ---- seed ----------------------------------------------------------------------------------------
const started = Date.now();
const log = (text: string) =>
  process.stderr.write(`${text} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
async function inBatches(count: number, size: number, each: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < count; i += size) {
    await Promise.all(Array.from({ length: Math.min(size, count - i) }, (_, j) => each(i + j)));
  }
}
const word = (i: number) => i.toString(26).replace(/\d/g, (d) => 'qrstuvwxyz'[Number(d)]!);

await inBatches(1_000, 50, (i) =>
  bulwark.flags.set(
    {
      key: `team${i % 20}.feature-${word(i)}`,
      type: 'boolean',
      description: i % 7 === 0 ? 'checkout path' : `feature ${i}`,
      variants: { on: true, off: false },
      defaultVariant: 'on',
      offVariant: 'off',
      enabled: i % 10 !== 0,
      ...(i % 3 === 0 ? { rollout: { variant: 'on', otherwise: 'off', percentage: i % 100 } } : {}),
    },
    { actor: 'bench' },
  ),
);
log('1,000 flags');

const QUEUES = ['email', 'reports', 'webhooks', 'thumbnails'];
await inBatches(9_000, 500, (i) =>
  bulwark.queues.add(QUEUES[i % 3]!, { to: `user${i}@example.test`, body: 'x'.repeat(200 + (i % 5) * 400) }),
);
// A tenth dead: jobs of one attempt whose handler fails.
await inBatches(1_000, 500, (i) =>
  bulwark.queues.add('thumbnails', { image: `img-${i}.png` }, { attempts: 1 }),
);
bulwark.queues.process('thumbnails', async () => {
  throw new Error('thumbnail service refused the image: 415 unsupported type');
});
for (;;) {
  const counts = (await bulwark.queues.counts('thumbnails')).get('thumbnails');
  if ((counts?.dead ?? 0) >= 1_000) break;
  await new Promise((resolve) => setTimeout(resolve, 200));
}
await bulwark.queues.pause('thumbnails');
log('10,000 jobs (1,000 dead)');

for (let i = 0; i < 1_000; i++) {
  // A distinct type per error: 1,000 groups.
  const error = new Error(`payment provider answered ${i % 2 === 0 ? 'timeout' : 'bad gateway'}`);
  error.name = `Provider${word(i)}Error`;
  bulwark.errors.capture(error, { user: { id: `u${i % 300}` } });
}
await bulwark.errors.flush();
log('1,000 error groups');

// Alert states: a fifth firing, a fifth pending.
const states = Array.from({ length: ALERT_RULES }, (_, i) => ({
  rule: `rule-${String(i).padStart(4, '0')}`,
  state: i % 5 === 0 ? 'firing' : i % 5 === 1 ? 'pending' : 'inactive',
  since: Date.now() - (ALERT_RULES - i) * 1_000,
  value: i,
  transitions: i % 5 === 0 ? 1 : 0,
  version: 1,
  updated_at: Date.now(),
}));
for (let i = 0; i < states.length; i += 200) {
  await bulwark.store.db
    .insertInto('bulwark_alerts')
    .values(states.slice(i, i + 200))
    .execute();
}
log('1,000 alert rules (200 firing, 200 pending)');

const points = new PointStore(bulwark.store.db, bulwark.store.engine);
const SERIES: [string, (t: number) => number][] = [
  ['http.requests_per_s{route="*"}', (t) => 120 + 80 * Math.sin(t / 3_600_000)],
  ['http.error_ratio{route="*"}', (t) => 0.002 + 0.002 * Math.max(0, Math.sin(t / 7_200_000))],
  ['http.latency_p99_ms{route="*"}', (t) => 14 + 6 * Math.sin(t / 5_400_000)],
  ['process.rss_bytes', (t) => 150e6 + 20e6 * Math.sin(t / 86_400_000)],
];
const now = Date.now();
for (const [series, value] of SERIES) {
  for (const [resolutionS, spanMs] of [
    [10, 6 * 3_600_000],
    [60, 7 * 86_400_000],
    [3600, 7 * 86_400_000],
  ] as const) {
    const rows = [];
    for (let t = now - spanMs; t < now; t += resolutionS * 1000) {
      const bucket = t - (t % (resolutionS * 1000));
      const v = value(bucket);
      rows.push({
        series,
        resolution: resolutionS,
        at: bucket,
        count: 1,
        sum: v,
        min: v * 0.9,
        max: v * 1.1,
        last: v,
      });
    }
    for (let i = 0; i < rows.length; i += 2_000) await points.write(rows.slice(i, i + 2_000));
  }
}
log('7 days of history, 4 series');

// ---- measure ------------------------------------------------------------------------------------
/** Each page by the heading it shows (level 1) once it is there. */
const PAGES: { name: string; path: string; heading: string }[] = [
  { name: 'Overview', path: '/admin/', heading: 'Overview' },
  { name: 'Flags', path: '/admin/flags', heading: 'Flags' },
  { name: 'Flags, searched', path: '/admin/flags?q=checkout', heading: 'Flags' },
  { name: 'Flag detail', path: '/admin/flags/team0.feature-q', heading: 'Flag team0.feature-q' },
  { name: 'Dependencies', path: '/admin/dependencies', heading: 'Dependencies' },
  { name: 'Queues', path: '/admin/queues', heading: 'Queues' },
  { name: 'Dead jobs', path: '/admin/queues/thumbnails?state=dead', heading: 'thumbnails' },
  { name: 'Errors', path: '/admin/errors', heading: 'Errors' },
  { name: 'Alerts', path: '/admin/alerts', heading: 'Alerts' },
  { name: 'Instances', path: '/admin/instances', heading: 'Instances' },
  { name: 'Processes', path: '/admin/processes', heading: 'Processes' },
  {
    name: 'Metrics, 7 days',
    path: `/admin/metrics?series=${encodeURIComponent('http.requests_per_s{route="*"}')}&range=7d`,
    heading: 'Metrics',
  },
  { name: 'Audit log', path: '/admin/audit', heading: 'Audit log' },
];
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: CHROMIUM_ARGS,
});
const context = await browser.newContext({ baseURL: base, viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
await page.goto('/admin/');
await page.getByLabel('Admin key').fill(KEY);
await page.getByRole('button', { name: 'Sign in' }).click();
await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
const shown = async (entry: (typeof PAGES)[number]) => {
  await page.getByRole('heading', { level: 1 }).filter({ hasText: entry.heading }).waitFor();
  // (Not waitForFunction: the console's CSP refuses the string evaluation it needs.)
  await page.locator('[aria-busy="true"]').first().waitFor({ state: 'detached' });
};

const jsGzip = (() => {
  const html = readFileSync(path.join(built, 'index.html'), 'utf8');
  return [...html.matchAll(/src="\/admin\/assets\/([^"]+\.js)"/g)].reduce(
    (sum, m) => sum + gzipSync(readFileSync(path.join(built, 'assets', m[1]!)), { level: 9 }).length,
    0,
  );
})();

const results: { name: string; renderMs: number[]; routes: Set<string>; maxRows: number }[] = [];
for (const entry of PAGES) {
  const result = { name: entry.name, renderMs: [] as number[], routes: new Set<string>(), maxRows: 0 };
  const onResponse = async (response: Response) => {
    const url = new URL(response.url());
    if (!url.pathname.startsWith('/admin/api/') || url.pathname === '/admin/api/events') return;
    result.routes.add(`${response.request().method()} ${url.pathname}`);
    const body: unknown = await response.json().catch(() => undefined);
    const rows = Array.isArray(body)
      ? body.length
      : Math.max(
          0,
          ...Object.values((body ?? {}) as Record<string, unknown>).map((v) =>
            Array.isArray(v) ? v.length : 0,
          ),
        );
    result.maxRows = Math.max(result.maxRows, rows);
  };
  page.on('response', onResponse);
  for (let round = 0; round < 5; round++) {
    const t0 = performance.now();
    await page.goto(entry.path);
    await shown(entry);
    result.renderMs.push(performance.now() - t0);
  }
  page.off('response', onResponse);
  if (screenshots !== undefined) {
    mkdirSync(screenshots, { recursive: true });
    await page.screenshot({
      path: path.join(screenshots, `${entry.name.toLowerCase().replace(/\W+/g, '-')}.png`),
    });
  }
  results.push(result);
  log(`page ${entry.name}`);
}
// Server time: 20 more calls of each route the pages used (GET only), with the browser's session.
const cookies = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
serverMs.clear();
const apiCalls = new Set(results.flatMap((r) => [...r.routes]).filter((r) => r.startsWith('GET ')));
const paths = new Map<string, string>();
page.on('request', (request) => {
  const url = new URL(request.url());
  if (url.pathname.startsWith('/admin/api/'))
    paths.set(`${request.method()} ${url.pathname}`, url.pathname + url.search);
});
for (const entry of PAGES) {
  await page.goto(entry.path);
  await shown(entry);
}
for (const call of apiCalls) {
  const target = paths.get(call) ?? call.slice(4);
  for (let i = 0; i < 20; i++)
    await fetch(`${base}${target}`, { headers: { cookie: cookies } }).then((r) => r.arrayBuffer());
}
await browser.close();

console.log(describeMachine(['fastify', 'playwright-core']));
const md = [
  'Seeded: 1,000 flags; 10,000 jobs in 4 queues (1,000 dead); 1,000 error groups; 1,000 alert rules ' +
    '(200 firing, 200 pending; states written directly); 7 days of 4 history series (SQLite).',
  '',
  `JavaScript of every page: ${(jsGzip / 1024).toFixed(1)} KB gzipped (one bundle).`,
  '',
  '| page | render, median of 5 (ms) | max | most rows in an answer |',
  '|---|---|---|---|',
];
for (const r of results) {
  md.push(
    `| ${r.name} | ${median(r.renderMs).toFixed(0)} | ${Math.max(...r.renderMs).toFixed(0)} | ${r.maxRows} |`,
  );
}
md.push('', '| admin API route | server time, median of 20 (ms) | max |', '|---|---|---|');
const routes = [...serverMs].sort().filter(([, list]) => list.length >= 10);
for (const [route, list] of routes) {
  md.push(`| ${route} | ${median(list).toFixed(1)} | ${Math.max(...list).toFixed(1)} |`);
}
const markdown = md.join('\n');
console.log(markdown);
writeResult({
  benchmark: 'console',
  packages: ['fastify', 'playwright-core'],
  settings: { flags: 1_000, jobs: 10_000, errorGroups: 1_000, alertRules: ALERT_RULES, historyDays: 7 },
  markdown,
  data: {
    jsGzipBytes: jsGzip,
    pages: results.map((r) => ({ name: r.name, renderMs: r.renderMs, maxRows: r.maxRows })),
    serverMs: Object.fromEntries(routes),
  },
});
await app.close();
rmSync(dir, { recursive: true, force: true });

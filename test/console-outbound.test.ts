// The outbound section of the console's Dependencies page in real Chromium (Debian's, driven by
// playwright-core) against a real server (the demo app on loopback) whose upstream `api` is a real
// process (test/fixtures/outbound-upstream.ts): closed while it answers; kill -9 it, call it until
// the breaker opens, and the page shows `open` with the last failure; start it again and the page
// shows `closed` once a trial call has gone through. axe-core and a screenshot. No sleeps.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app/build.js';
import type { Bulwark } from '../src/runtime/create.js';
import {
  axeViolations,
  launchChromium,
  listenOnLoopback,
  openContext,
  PageProblems,
  screenshot,
  signIn,
} from './helpers/browser.js';
import { spawnOnFreePort, spawnTs, type Spawned } from './helpers/process.js';
import { until } from './helpers/wait.js';

const KEY = 'console-outbound-test-key-0123456789abcdef';
const FIXTURE = 'test/fixtures/outbound-upstream.ts';
const dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-console-outbound-'));
const procs: Spawned[] = [];

let app: FastifyInstance;
let bulwark: Bulwark;
let base: string;
let browser: Browser;
let port: number;

beforeAll(async () => {
  const upstream = await spawnOnFreePort(FIXTURE, [], {}, (p) => `listening ${p}`);
  procs.push(upstream.proc);
  port = upstream.port;
  app = await buildApp({
    env: { BULWARK_ADMIN_KEY: KEY, BULWARK_DATA_DIR: dataDir, LOG_LEVEL: 'error' },
    outbound: {
      upstreams: {
        api: {
          origin: `http://127.0.0.1:${port}`,
          breaker: { consecutiveFailures: 2, halfOpenAfterMs: 300 },
          retry: { maxRetries: 0 },
          throttle: false,
        },
      },
    },
  });
  bulwark = (app as unknown as { bulwark: Bulwark }).bulwark;
  base = await listenOnLoopback(app);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  for (const proc of procs)
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
  await Promise.all(procs.map((proc) => proc.exited));
  rmSync(dataDir, { recursive: true, force: true });
});

const callApi = () =>
  bulwark.http.request('api', { path: '/work' }).then(
    (answer) => answer.status,
    (error: { code: string }) => error.code,
  );

describe('the outbound section of the Dependencies page in Chromium', () => {
  it('shows the breaker closed, open after the upstream is killed (with the last failure), closed again once it is back', async () => {
    expect(await callApi()).toBe(200);
    const problems = new PageProblems();
    const { page } = await openContext(browser, base, problems);
    await signIn(page, KEY);
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    await page.goto('/admin/dependencies');
    const row = (p: Page) =>
      p
        .getByRole('table', { name: 'Outbound upstreams of this instance' })
        .getByRole('row', { name: /^api/ });
    await row(page).getByText('closed', { exact: true }).waitFor();
    await row(page).getByText('1 ok, 0 failed, 0 late').waitFor();
    expect(await axeViolations(page)).toEqual([]);

    const [first] = procs;
    first?.child.kill('SIGKILL');
    await first?.exited;
    await until(async () => (await callApi()) === 'BWK_ERR_OUTBOUND_OPEN', 10_000, 'the breaker opens');
    await row(page).getByText('open', { exact: true }).waitFor();
    await row(page).getByText('BWK_ERR_OUTBOUND_FAILED').waitFor();
    await screenshot(page, 'dependencies-outbound-open');

    const again = spawnTs(FIXTURE, [], { PORT: String(port) });
    procs.push(again);
    await again.waitFor(`listening ${port}`);
    await until(async () => (await callApi()) === 200, 10_000, 'a trial call closes the breaker');
    await row(page).getByText('closed', { exact: true }).waitFor();
    await page.context().close();
    expect(problems.problems, problems.problems.join('\n')).toEqual([]);
  });
});

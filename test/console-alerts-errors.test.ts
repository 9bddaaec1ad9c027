// The console's Alerts and Errors pages in real Chromium (Debian's, driven by playwright-core)
// against a real server: Bulwark on a SQLite store with an alert rule that really fires (a low
// threshold on the process's memory, judged from the metrics history) and a route that really
// throws. Silences a firing alert from its row and expires the silence, acknowledges it, sends a
// test notification to a real webhook; resolves an error group from its page after showing a cut
// stack whole; a viewer sees no control that changes anything. Every change is checked in the
// audit log with the key that made it. axe-core and screenshots of both pages and a group's page.
// Role-based locators; no sleeps: each step waits for the state it needs.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Access } from '../src/access/types.js';
import { bulwark as bulwarkPlugin, fastifyOptions } from '../src/http/plugin.js';
import { createBulwark, type Bulwark } from '../src/runtime/create.js';
import { LogCapture } from './helpers/app.js';
import {
  axeViolations,
  launchChromium,
  listenOnLoopback,
  openContext,
  PageProblems,
  screenshot,
  settled,
  signIn,
} from './helpers/browser.js';

const dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-console-alerts-'));

let app: FastifyInstance;
let bulwark: Bulwark;
let base: string;
let browser: Browser;
let problems: PageProblems;
let hook: http.Server;
const delivered: { rule: string; status: string }[] = [];
const keys = { operator: '', viewer: '' };

/** Depth frames of the app's own code above the throw: a long stack, as real ones can be. */
function nested(depth: number, user: string): never {
  if (depth === 0) throw new Error(`checkout exploded for order 42 of ${user.length}-letter user`);
  return nested(depth - 1, user);
}

beforeAll(async () => {
  hook = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      delivered.push(JSON.parse(body) as { rule: string; status: string });
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  bulwark = await createBulwark({
    serviceId: 'console-alerts-test',
    env: { BULWARK_DATA_DIR: dataDir },
    // The route's errors are logged with their 150-frame stacks: kept out of the test's output.
    logDestination: new LogCapture(),
    metricsHistory: { intervalMs: 1_000, tiers: [{ resolutionS: 1, retentionMs: 3_600_000 }] },
    alerts: {
      defaultRules: false,
      // The test drives evaluation itself.
      evaluateEveryMs: 3_600_000,
      sendEveryMs: 3_600_000,
      receivers: [
        {
          name: 'ops',
          type: 'webhook',
          url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`,
        },
      ],
      rules: [
        {
          id: 'test.memory-high',
          kind: 'threshold',
          series: 'process.rss_bytes',
          fireAbove: 1,
          severity: 'warning',
          summary: 'Resident memory above 1 byte (always: a rule that fires)',
          labels: { component: 'checkout' },
        },
        {
          id: 'test.memory-slow',
          kind: 'threshold',
          series: 'process.rss_bytes',
          fireAbove: 1,
          forMs: 86_400_000,
          severity: 'info',
          summary: 'The same, held for a day first (pending)',
        },
      ],
    },
  });
  app = Fastify(fastifyOptions(bulwark));
  app.addHook('onClose', async () => bulwark.close());
  await app.register(bulwarkPlugin, { bulwark, title: 'Console alerts test' });
  app.get('/checkout/:user', async (request) => {
    const { user } = request.params as { user: string };
    (request as { user?: unknown }).user = { id: user };
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 200;
    try {
      return nested(150, user);
    } finally {
      Error.stackTraceLimit = limit;
    }
  });
  base = await listenOnLoopback(app);
  const access = bulwark.parts.get('access') as Access;
  keys.operator = (await access.createKey('ada', 'operator', 'test')).key;
  keys.viewer = (await access.createKey('val', 'viewer', 'test')).key;
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  hook?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

afterEach(() => {
  expect(problems.problems, problems.problems.join('\n')).toEqual([]);
});

async function signedIn(key = keys.operator): Promise<Page> {
  problems = new PageProblems();
  const { page } = await openContext(browser, base, problems);
  await signIn(page, key);
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  return page;
}

async function audited(action: string): Promise<{ actor: string; target: string; detail: unknown }[]> {
  return (await bulwark.store.audit.list({ limit: 100 })).filter((row) => row.action === action);
}

describe('the Alerts page in Chromium', () => {
  it('silences a firing alert from its row (matchers prefilled) and expires the silence', async () => {
    const history = bulwark.metrics.history;
    const alerts = bulwark.alerts;
    if (history === undefined || alerts === undefined) throw new Error('history and alerts expected');
    await history.sampleNow();
    await alerts.evaluateOnce();

    const page = await signedIn();
    await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Alerts' }).click();
    await page.getByRole('heading', { name: 'Alerts', level: 1 }).waitFor();
    const rules = page.getByRole('table', { name: 'Alert rules' });
    const row = rules.getByRole('row', { name: /test\.memory-high/ });
    await row.getByText('firing', { exact: true }).waitFor();
    await rules
      .getByRole('row', { name: /test\.memory-slow/ })
      .getByText('pending', { exact: true })
      .waitFor();
    await settled(page);
    expect(await axeViolations(page), 'alerts page').toEqual([]);
    await screenshot(page, 'page-alerts');

    await row.getByRole('button', { name: 'Silence' }).click();
    const dialog = page.getByRole('dialog', { name: 'Silence test.memory-high' });
    expect(await dialog.getByLabel('Value of alertname').inputValue()).toBe('test.memory-high');
    expect(await dialog.getByLabel('Value of component').inputValue()).toBe('checkout');
    // Only the alert's name: the severity and component matchers are left out.
    await dialog.getByRole('checkbox', { name: 'severity' }).uncheck();
    await dialog.getByRole('checkbox', { name: 'component' }).uncheck();
    await dialog.getByLabel('Duration').selectOption({ label: '1 hour' });
    // Without a reason nothing is created: the dialog says why and stays open.
    const create = dialog.getByRole('button', { name: 'Create silence' });
    await create.click();
    await dialog
      .getByRole('alert')
      .getByText(/Say why/)
      .waitFor();
    expect(await alerts.silences.list(Date.now())).toEqual([]);
    await dialog.getByLabel(/Reason/).fill('deploying the fix');
    await screenshot(page, 'alerts-silence-dialog');
    await create.click();
    await dialog.waitFor({ state: 'hidden' });
    await screenshot(page, 'alerts-silenced');
    await row.getByText('silenced', { exact: true }).waitFor();
    const silences = page.getByRole('table', { name: 'Silences' });
    const silenceRow = silences.getByRole('row', { name: /deploying the fix/ });
    await silenceRow.getByText('key:ada').waitFor();

    const [silence] = await alerts.silences.list(Date.now());
    expect(silence).toMatchObject({
      matchers: { alertname: 'test.memory-high' },
      createdBy: 'key:ada',
      comment: 'deploying the fix',
    });
    expect((silence?.endsAt ?? 0) - (silence?.startsAt ?? 0)).toBe(3_600_000);
    expect(await audited('alerts.silence')).toEqual([
      expect.objectContaining({ actor: 'key:ada', target: `silence:${silence?.id}` }),
    ]);

    await silenceRow.getByRole('button', { name: 'Expire' }).click();
    await page
      .getByRole('dialog', { name: 'Expire this silence?' })
      .getByRole('button', { name: 'Expire silence' })
      .click();
    await page.getByText('No silence is active or planned.').waitFor();
    await row.getByText('silenced', { exact: true }).waitFor({ state: 'detached' });
    expect(await alerts.silences.list(Date.now())).toEqual([]);
    expect(await audited('alerts.unsilence')).toEqual([
      expect.objectContaining({ actor: 'key:ada', target: `silence:${silence?.id}` }),
    ]);
    await page.context().close();
  });

  it('acknowledges a firing alert and sends a test notification to a real webhook', async () => {
    const page = await signedIn();
    await page.goto('/admin/alerts?state=firing');
    const row = page
      .getByRole('table', { name: 'Alert rules' })
      .getByRole('row', { name: /test\.memory-high/ });
    await row.getByRole('button', { name: 'Acknowledge' }).click();
    const dialog = page.getByRole('dialog', { name: 'Acknowledge test.memory-high?' });
    await dialog.getByLabel(/Reason/).fill('looking into it');
    await dialog.getByRole('button', { name: 'Acknowledge' }).click();
    await row.getByText(/acknowledged by/).waitFor();
    await row.getByText('key:ada').waitFor();
    expect(await row.getByRole('button', { name: 'Acknowledge' }).count()).toBe(0);
    expect(await audited('alerts.ack')).toEqual([
      expect.objectContaining({ actor: 'key:ada', target: 'alert:test.memory-high' }),
    ]);

    await page.getByLabel('Receiver').selectOption('ops');
    await page.getByRole('button', { name: 'Send test notification' }).click();
    await page.getByRole('status').getByText('Test notification delivered to ops').waitFor();
    expect(delivered).toContainEqual(expect.objectContaining({ rule: 'bulwark.test', status: 'firing' }));
    await page.context().close();
  });
});

describe('the Errors page in Chromium', () => {
  it('lists real errors thrown in a route and resolves a group from its page, showing a cut stack whole', async () => {
    for (const user of ['ann', 'bob', 'ann'])
      expect((await fetch(`${base}/checkout/${user}`)).status).toBe(500);
    await bulwark.errors.flush();

    const page = await signedIn();
    await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Errors' }).click();
    await page.getByRole('heading', { name: 'Errors', level: 1 }).waitFor();
    const row = page.getByRole('row', { name: /checkout exploded/ });
    await row.waitFor();
    const cells = await row.getByRole('cell').allTextContents();
    expect(cells.slice(1, 3)).toEqual(['3', '2']); // events, users affected
    await row.getByRole('img', { name: /^3 events in the last 24 hours/ }).waitFor();
    await settled(page);
    expect(await axeViolations(page), 'errors page').toEqual([]);
    await screenshot(page, 'page-errors');

    await row.getByRole('link', { name: /checkout exploded/ }).click();
    await page.getByRole('heading', { name: 'Error group', level: 1 }).waitFor();
    const sample = page.getByRole('article').first();
    await sample.getByText('GET /checkout/:user').waitFor();
    const stack = sample.locator('pre.stack');
    expect((await stack.textContent())?.length).toBe(2_000);
    await sample.getByRole('button', { name: /^Show all \(\d[\d,]* characters\)$/ }).click();
    await expect.poll(async () => (await stack.textContent())?.length ?? 0).toBeGreaterThan(2_000);
    await settled(page);
    expect(await axeViolations(page), 'error group page').toEqual([]);
    await screenshot(page, 'page-error-group');

    await page.getByRole('button', { name: 'Resolve' }).click();
    const dialog = page.getByRole('dialog', { name: /^Resolve Error: checkout exploded/ });
    await dialog.getByLabel(/Reason/).fill('fixed in the next release');
    await dialog.getByRole('button', { name: 'Resolve' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page.getByRole('definition').getByText('resolved', { exact: true }).waitFor();
    const [group] = await bulwark.errors.groups({ state: 'resolved' });
    expect(group?.message).toMatch(/^checkout exploded/);
    expect(await audited('errors.resolve')).toEqual([
      expect.objectContaining({
        actor: 'key:ada',
        target: `error:${group?.fingerprint}`,
        detail: { before: 'open', after: 'resolved', reason: 'fixed in the next release' },
      }),
    ]);
    // The open list no longer has it; the resolved one does.
    await page.getByRole('link', { name: 'All errors' }).click();
    await page.getByText('0 open groups').waitFor();
    await page.getByLabel('State').selectOption('resolved');
    await page
      .getByRole('row', { name: /checkout exploded/ })
      .getByRole('button', { name: 'Re-open' })
      .waitFor();
    await page.context().close();
  });
});

describe('a viewer', () => {
  it('sees alerts and errors without a control that changes anything', async () => {
    const page = await signedIn(keys.viewer);
    await page.goto('/admin/alerts?state=all');
    await page
      .getByRole('table', { name: 'Alert rules' })
      .getByRole('row', { name: /test\.memory-high/ })
      .waitFor();
    await settled(page);
    for (const name of ['Silence', 'Acknowledge', 'Expire', 'Send test notification'])
      expect(await page.getByRole('button', { name }).count(), name).toBe(0);
    await page.goto('/admin/errors?state=all');
    await page.getByRole('row', { name: /checkout exploded/ }).waitFor();
    for (const name of ['Resolve', 'Ignore', 'Re-open'])
      expect(await page.getByRole('button', { name }).count(), name).toBe(0);
    await page.context().close();
  });
});

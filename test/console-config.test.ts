// The Config and Instances pages and the charts' annotations in real Chromium (Debian's, driven by
// playwright-core) against a real server: the demo app listening on loopback with its config file
// and SQLite store in a temp data dir. Rolls the config back after typing the revision number and
// sees the app answer with the old name; validates a pasted config; finds the running instance;
// sees the rollback marked on the Metrics page; a viewer gets no rollback button; axe-core and
// screenshots of both pages (test-results/console/). Role-based locators, no sleeps.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Access } from '../src/access/types.js';
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

const KEY = 'console-config-test-key-0123456789abcdef';
const dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-console-config-'));

let app: FastifyInstance;
let bulwark: Bulwark;
let base: string;
let browser: Browser;
let problems: PageProblems;

beforeAll(async () => {
  // Revision 1 is the file found at start; revision 2 a rename.
  writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({ name: 'spin one' }));
  app = await buildApp({
    env: { BULWARK_ADMIN_KEY: KEY, BULWARK_DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
  });
  bulwark = (app as unknown as { bulwark: Bulwark }).bulwark;
  await bulwark.config!.set('name', 'spin two', { reason: 'rename', author: 'test' });
  base = await listenOnLoopback(app);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

afterEach(() => {
  // Whatever went wrong inside the pages of a test fails that test.
  expect(problems.problems, problems.problems.join('\n')).toEqual([]);
});

async function signedIn(key = KEY): Promise<Page> {
  problems = new PageProblems();
  const { page } = await openContext(browser, base, problems);
  await signIn(page, key);
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  return page;
}

/** Opens a page from the navigation and waits until nothing on it is loading. */
async function open(page: Page, name: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name, exact: true }).click();
  await page.getByRole('heading', { name, level: 1 }).waitFor();
  await expect.poll(() => page.locator('[aria-busy="true"]').count()).toBe(0);
}

const appName = async () => ((await (await fetch(`${base}/`)).json()) as { name: string }).name;

describe('the Config and Instances pages in Chromium', () => {
  it('rolls the config back only after the revision number is typed, and the app answers with the old name', async () => {
    expect(await appName()).toBe('spin two');
    const page = await signedIn();
    await open(page, 'Config');
    const revisions = page
      .getByRole('table')
      .filter({ has: page.getByRole('columnheader', { name: 'Why' }) });
    await revisions
      .getByRole('row', { name: /rename/ })
      .getByText('active')
      .waitFor();
    expect(await axeViolations(page)).toEqual([]);
    await screenshot(page, 'page-config');

    await page.getByRole('button', { name: 'Roll back to 1' }).click();
    const dialog = page.getByRole('dialog', { name: 'Roll back to revision 1?' });
    const confirm = dialog.getByRole('button', { name: 'Roll back' });
    expect(await confirm.isDisabled()).toBe(true);
    await dialog.getByLabel(/Type 1 to confirm/).fill('2');
    await expect.poll(() => confirm.isDisabled()).toBe(true);
    await dialog.getByLabel(/Type 1 to confirm/).fill('1');
    await dialog.getByLabel(/Reason/).fill('browser test');
    await expect.poll(() => confirm.isEnabled()).toBe(true);
    await screenshot(page, 'config-rollback-confirmation');
    await confirm.click();
    await dialog.waitFor({ state: 'hidden' });

    // Revision 3 is the rollback, active, by the signed-in actor; the app serves the old name.
    const rollback = revisions.getByRole('row', { name: /rollback to revision 1: browser test/ });
    await rollback.getByText('active').waitFor();
    await rollback.getByText('admin', { exact: true }).waitFor();
    expect(bulwark.config!.revision).toBe(3);
    await expect.poll(appName).toBe('spin one');
    const [audit] = await bulwark.store.audit.list({ target: 'config:config.json' });
    expect(audit).toMatchObject({ actor: 'admin', action: 'config.rollback' });

    // The diff between the rename and the rollback, picked from two revision numbers.
    await page.getByLabel('From revision').fill('2');
    await page.getByLabel('To revision').fill('3');
    await page.getByRole('button', { name: 'Compare', exact: true }).click();
    await page.getByText('From revision 2 to revision 3:').waitFor();
    expect(page.url()).toContain('from=2&to=3');
    await page.context().close();
  });

  it('validates a pasted config without writing it: the changes, or the coded error naming the field', async () => {
    const page = await signedIn();
    problems.expected.push(/^400 POST \/admin\/api\/config\/validate$/);
    await open(page, 'Config');
    const revision = bulwark.config!.revision;
    const textarea = page.getByLabel('Config (JSON)');
    await textarea.fill('{ "name": "spin three" }');
    await page.getByRole('button', { name: 'Validate' }).click();
    await page.getByRole('status').filter({ hasText: 'Writing it would change 1 field' }).waitFor();
    await textarea.fill('{ "name": "" }');
    await page.getByRole('button', { name: 'Validate' }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: 'BWK_ERR_CONFIG_INVALID' })
      .getByText(/name/)
      .first()
      .waitFor();
    expect(bulwark.config!.revision).toBe(revision);
    await page.context().close();
  });

  it('marks the rollback on the Metrics page: on the chart and in the list of events', async () => {
    await bulwark.metrics.history!.sampleNow();
    const page = await signedIn();
    await page.goto('/admin/metrics?series=process.rss_bytes&range=1h');
    await page.getByRole('heading', { name: 'Metrics', level: 1 }).waitFor();
    const events = page.getByRole('region', { name: 'Events in this range' });
    await events
      .getByRole('link', { name: /^Config revision 3: rollback to revision 1: browser test \(admin\)$/ })
      .waitFor();
    // The chart's legend names the kinds of its markers, and the one under the pointer: the rollback
    // is a few pixels from the chart's right end (the range ends at the next whole minute).
    const legend = page.getByRole('figure').locator('.annotation-legend');
    await legend.getByText('Config', { exact: true }).waitFor();
    const over = page.getByRole('figure').locator('.u-over');
    const box = await over.boundingBox();
    const hovered = legend.locator('.hovered');
    for (let dx = 1; box !== null && dx <= box.width / 10 && (await hovered.count()) === 0; dx += 3)
      await over.hover({ position: { x: box.width - dx, y: box.height / 2 } });
    await hovered.getByText(/Config revision \d/).waitFor();
    await expect.poll(() => page.locator('[aria-busy="true"]').count()).toBe(0);
    await screenshot(page, 'metrics-annotations');
    // The marker's link leads to the revision.
    await events.getByRole('link', { name: /^Config revision 3/ }).click();
    await page.getByRole('heading', { name: 'Revision 3', level: 2 }).waitFor();
    await page.context().close();
  });

  it('lists the running instance, alive, with its version and pid', async () => {
    const page = await signedIn();
    await open(page, 'Instances');
    const row = page.getByRole('row', {
      name: new RegExp(bulwark.instanceId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')),
    });
    await row.getByText('alive', { exact: true }).waitFor();
    await row.getByRole('cell', { name: String(process.pid), exact: true }).waitFor();
    expect(await axeViolations(page)).toEqual([]);
    await screenshot(page, 'page-instances');
    await page.context().close();
  });

  it('shows a viewer no rollback control', async () => {
    const access = bulwark.parts.get('access') as Access;
    const { key } = await access.createKey('config-viewer', 'viewer', 'test');
    const page = await signedIn(key);
    await open(page, 'Config');
    await page.getByRole('button', { name: 'Compare with active' }).first().waitFor();
    expect(await page.getByRole('button', { name: /^Roll back/ }).count()).toBe(0);
    await page.context().close();
  });
});

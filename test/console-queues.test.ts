// The console's Queues pages in real Chromium (Debian's, driven by playwright-core) against a real
// server: the demo app listening on loopback, its embedded queue on SQLite in a temp data dir, and
// workers of the test's own in the same process. Pauses and resumes a queue and sees its worker
// stop and start; redrives a dead job (one, then all after typing the queue's name) and sees it run;
// promotes and removes (after typing the job's id); shows a payload whole; a viewer sees no control.
// Every change is audited with the signed-in key. axe-core and a screenshot on the list, a queue's
// jobs and a job. Role-based locators; no sleeps: each step waits for the state it needs.
import { mkdtempSync, rmSync } from 'node:fs';
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
  settled,
  signIn,
} from './helpers/browser.js';

const KEY = 'console-queues-test-key-0123456789abcdef';
const dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-console-queues-'));

let app: FastifyInstance;
let bulwark: Bulwark;
let base: string;
let browser: Browser;
let problems: PageProblems;
let operatorKey: string;
let viewerKey: string;

beforeAll(async () => {
  app = await buildApp({
    env: { BULWARK_ADMIN_KEY: KEY, BULWARK_DATA_DIR: dataDir, LOG_LEVEL: 'error' },
    queues: { pollMs: 20 },
  });
  bulwark = (app as unknown as { bulwark: Bulwark }).bulwark;
  const access = bulwark.parts.get('access') as Access;
  operatorKey = (await access.createKey('ops', 'operator', 'test')).key;
  viewerKey = (await access.createKey('watcher', 'viewer', 'test')).key;
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

async function signedIn(key = operatorKey): Promise<Page> {
  problems = new PageProblems();
  const { page } = await openContext(browser, base, problems);
  await signIn(page, key);
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  return page;
}

const counts = async (queue: string) => (await bulwark.queues.counts(queue)).get(queue);

/** The audit records of `queue` as [actor, action]. */
async function audited(queue: string): Promise<string[][]> {
  const rows = await bulwark.store.audit.list({ target: `queue:${queue}` });
  return rows.map((r) => [r.actor, r.action]).reverse();
}

describe('the Queues pages in Chromium', () => {
  it('pauses a queue (its worker stops: new jobs stay waiting) and resumes it (they run)', async () => {
    const ran: number[] = [];
    bulwark.queues.process('mail', async (job) => {
      ran.push((job.data as { n: number }).n);
    });
    await bulwark.queues.add('mail', { n: 0 });
    await expect.poll(() => ran).toEqual([0]);

    const page = await signedIn();
    await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Queues' }).click();
    await page.getByRole('heading', { name: 'Queues', level: 1 }).waitFor();
    const row = page.getByRole('row', { name: /^mail/ });
    await row.getByRole('button', { name: 'Pause' }).click();
    const pause = page.getByRole('dialog', { name: 'Pause mail?' });
    await pause.getByLabel(/Reason/).fill('browser test');
    await pause.getByRole('button', { name: 'Pause queue' }).click();
    await pause.waitFor({ state: 'hidden' });
    await row.getByText('paused', { exact: true }).waitFor();
    expect((await bulwark.queues.pausedQueues()).has('mail')).toBe(true);

    // Added while paused (by the app, not the page): they wait, and the page shows them live.
    await Promise.all([1, 2, 3].map((n) => bulwark.queues.add('mail', { n })));
    await row.getByRole('link', { name: '3 waiting in mail' }).waitFor();
    expect(ran).toEqual([0]);
    expect(await counts('mail')).toMatchObject({ waiting: 3, active: 0 });
    await settled(page);
    expect(await axeViolations(page)).toEqual([]);
    await screenshot(page, 'queues-list');

    await row.getByRole('button', { name: 'Resume' }).click();
    await page
      .getByRole('dialog', { name: 'Resume mail?' })
      .getByRole('button', { name: 'Resume queue' })
      .click();
    await expect.poll(() => [...ran].sort()).toEqual([0, 1, 2, 3]);
    await row.getByRole('link', { name: '0 waiting in mail' }).waitFor();
    expect(await row.getByText('paused', { exact: true }).count()).toBe(0);
    expect(await audited('mail')).toEqual([
      ['key:ops', 'queue.pause'],
      ['key:ops', 'queue.resume'],
    ]);
    await page.context().close();
  });

  it('shows dead jobs cut short with "show all" and a job whole; redrives one, then all, and they run', async () => {
    let broken = true;
    const ran: string[] = [];
    bulwark.queues.process('fragile', async (job) => {
      if (broken) throw new Error(`upstream refused ${job.id}: ${'context '.repeat(200)}`);
      ran.push(job.id);
    });
    const payload = { report: 'r'.repeat(5000) };
    for (const id of ['f1', 'f2', 'f3']) await bulwark.queues.add('fragile', payload, { id, attempts: 1 });
    await expect.poll(async () => (await counts('fragile'))?.dead, { timeout: 10_000 }).toBe(3);

    const page = await signedIn();
    await page.goto('/admin/queues');
    await page
      .getByRole('row', { name: /^fragile/ })
      .getByRole('link', { name: '3 dead in fragile' })
      .click();
    await page.getByRole('heading', { name: 'Dead jobs', level: 2 }).waitFor();
    expect(new URL(page.url()).search).toBe('?state=dead');
    const f1 = page.getByRole('row', { name: /^f1/ });
    // The list carries 1 KB of each; the rest is one click away.
    await f1.getByRole('button', { name: 'Show all (5,013 bytes)' }).click();
    await f1.getByText(`"report": "${'r'.repeat(5000)}"`).waitFor();
    await settled(page);
    expect(await axeViolations(page)).toEqual([]);
    await screenshot(page, 'queue-dead-jobs');

    await f1.getByRole('link', { name: 'f1' }).click();
    await page.getByRole('heading', { name: 'Job f1', level: 1 }).waitFor();
    await page.getByText('upstream refused f1', { exact: false }).waitFor();
    await settled(page);
    expect(await axeViolations(page)).toEqual([]);
    await screenshot(page, 'queue-job-detail');
    await page.goBack();

    broken = false;
    await page.getByRole('row', { name: /^f1/ }).getByRole('button', { name: 'Redrive' }).click();
    await expect.poll(() => ran).toEqual(['f1']);
    await page.getByRole('link', { name: 'dead (2)' }).waitFor();
    await expect.poll(() => page.getByRole('row', { name: /^f1/ }).count()).toBe(0);

    await page.getByRole('button', { name: 'Redrive all' }).click();
    const dialog = page.getByRole('dialog', { name: 'Redrive every dead job of fragile?' });
    const confirm = dialog.getByRole('button', { name: 'Redrive all' });
    await dialog.getByLabel(/Type fragile to confirm/).fill('fragil');
    await expect.poll(() => confirm.isDisabled()).toBe(true);
    await dialog.getByLabel(/Type fragile to confirm/).fill('fragile');
    await screenshot(page, 'queue-redrive-all-confirmation');
    await confirm.click();
    await expect.poll(() => [...ran].sort()).toEqual(['f1', 'f2', 'f3']);
    await page.getByRole('link', { name: 'dead (0)' }).waitFor();
    expect(await audited('fragile')).toEqual([
      ['key:ops', 'queue.redrive'],
      ['key:ops', 'queue.redrive'],
    ]);
    await page.context().close();
  });

  it('promotes a delayed job (it runs) and removes one only after its id is typed', async () => {
    const ran: string[] = [];
    bulwark.queues.process('later', async (job) => {
      ran.push(job.id);
    });
    await bulwark.queues.add('later', { n: 1 }, { id: 'soon', delay: 3_600_000 });
    await bulwark.queues.add('later', { n: 2 }, { id: 'never', delay: 3_600_000 });
    const page = await signedIn();
    await page.goto('/admin/queues/later?state=delayed');
    await page.getByRole('row', { name: /^soon/ }).getByRole('button', { name: 'Promote' }).click();
    await expect.poll(() => ran).toEqual(['soon']);

    await page
      .getByRole('row', { name: /^never/ })
      .getByRole('button', { name: 'Remove' })
      .click();
    const dialog = page.getByRole('dialog', { name: 'Remove job never?' });
    const confirm = dialog.getByRole('button', { name: 'Remove job' });
    expect(await confirm.isDisabled()).toBe(true);
    await dialog.getByLabel(/Type never to confirm/).fill('never');
    await confirm.click();
    await dialog.waitFor({ state: 'hidden' });
    await expect.poll(async () => (await counts('later'))?.delayed).toBe(0);
    await page.getByRole('link', { name: 'delayed (0)' }).waitFor();
    expect(ran).toEqual(['soon']);
    expect(await audited('later')).toEqual([
      ['key:ops', 'queue.promote'],
      ['key:ops', 'queue.remove'],
    ]);
    await page.context().close();
  });

  it('shows a viewer every queue page without a control that changes anything', async () => {
    await bulwark.queues.add('audit-only', { n: 1 }, { id: 'v1', delay: 3_600_000 });
    const page = await signedIn(viewerKey);
    await page.goto('/admin/queues');
    await page.getByRole('row', { name: /^audit-only/ }).waitFor();
    await page.goto('/admin/queues/audit-only?state=delayed');
    await page.getByRole('row', { name: /^v1/ }).waitFor();
    await page.goto('/admin/queues/audit-only/v1');
    await page.getByRole('heading', { name: 'Job v1', level: 1 }).waitFor();
    await settled(page);
    for (const path of [
      '/admin/queues',
      '/admin/queues/audit-only?state=delayed',
      '/admin/queues/audit-only/v1',
    ]) {
      await page.goto(path);
      await page.getByRole('heading', { level: 1 }).waitFor();
      await settled(page);
      for (const name of ['Pause', 'Resume', 'Redrive', 'Redrive all', 'Promote', 'Remove'])
        expect(await page.getByRole('button', { name, exact: true }).count(), `${path}: ${name}`).toBe(0);
    }
    await page.context().close();
  });
});

// Spin's waiting page in real Chromium (playwright-core + Debian's chromium): a newcomer signs up,
// joins and sees where they stand (place, the wait as a range or why there is none, the reason);
// two compatible people in two browsers are matched live and vote; a page offline while its match
// is made gets it when back (resumed with Last-Event-ID); a transient failure is retried by itself
// with the same Idempotency-Key; a lasting one shows its code (no alert()), can be tried again and
// reported to Bulwark's browser error endpoint; axe finds nothing serious, at 360 px wide too.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { axeViolations, launchChromium, openContext, PageProblems } from '../../../test/helpers/browser.js';
import { buildSpin } from '../src/app.js';

const dataDir = mkdtempSync(path.join(tmpdir(), 'spin-pages-'));
let app: Awaited<ReturnType<typeof buildSpin>>;
let base: string;
let browser: Browser;
let problems: PageProblems;

beforeAll(async () => {
  app = await buildSpin({
    env: { BULWARK_DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
    spin: { matchIntervalMs: 100, pollMs: 20 },
  });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});
afterEach(() => {
  expect(problems.problems).toEqual([]);
});

async function signUp(page: Page, name: string, gender: string, seeking: string[]): Promise<void> {
  await page.goto('/');
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('group', { name: 'You are' }).getByLabel(gender, { exact: true }).check();
  const seek = page.getByRole('group', { name: 'You seek' });
  for (const g of ['woman', 'man', 'nonbinary'])
    await seek.getByLabel(g, { exact: true }).setChecked(seeking.includes(g));
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect.poll(() => page.getByText(`Hello ${name}`).count()).toBe(1);
}

describe("Spin's waiting page", () => {
  it('signs up, joins and shows the place, the estimate and why; leaves', async () => {
    problems = new PageProblems();
    const { context, page } = await openContext(browser, base, problems, { width: 360 });
    try {
      await signUp(page, 'Ann', 'woman', ['woman']);
      expect(await axeViolations(page)).toEqual([]);
      await page.getByRole('button', { name: 'Join the queue' }).click();
      const wait = page.getByRole('region', { name: 'Your wait' });
      await expect.poll(() => wait.getByText('You are number 1 in your line').count()).toBe(1);
      // Nobody matched yet: no range, and the reason says why.
      expect(await wait.getByText('No estimate yet').count()).toBe(1);
      expect(await wait.textContent()).toMatch(/nobody seeking your match has been matched/);
      await page.getByText('Why am I waiting?').click();
      const why = page.locator('details');
      await expect.poll(() => why.textContent()).toMatch(/Right now only a few people wait/);
      expect(await why.textContent()).toMatch(/first come, first served/);
      expect(await why.textContent()).toMatch(/Why no estimate: too few people like you were matched lately/);
      expect(await axeViolations(page)).toEqual([]);
      // A reload keeps the user (the token is kept in the browser).
      await page.reload();
      await expect.poll(() => wait.getByText('You are number 1 in your line').count()).toBe(1);
      await page.getByRole('button', { name: 'Leave the queue' }).click();
      await expect.poll(() => page.getByText('You are not in the queue.').count()).toBe(1);
    } finally {
      await context.close();
    }
  });

  it('two compatible people in two browsers are matched live, like each other and both see it', async () => {
    problems = new PageProblems();
    const one = await openContext(browser, base, problems);
    const two = await openContext(browser, base, problems);
    try {
      await signUp(one.page, 'Cat', 'nonbinary', ['nonbinary']);
      await signUp(two.page, 'Dee', 'nonbinary', ['nonbinary']);
      for (const { page } of [one, two]) await page.getByRole('button', { name: 'Join the queue' }).click();
      const card = (page: Page) => page.getByRole('region', { name: 'Your match', exact: true });
      await expect.poll(() => card(one.page).textContent()).toContain('You have a match: Dee');
      await expect.poll(() => card(two.page).textContent()).toContain('You have a match: Cat');
      await card(one.page).getByRole('button', { name: 'Like' }).click();
      await expect.poll(() => card(one.page).textContent()).toContain('You said like; waiting for them.');
      await card(two.page).getByRole('button', { name: 'Like' }).click();
      for (const { page } of [one, two])
        await expect.poll(() => card(page).textContent()).toContain('You both liked each other.');
      const history = one.page.getByRole('region', { name: 'Your matches' });
      await expect.poll(() => history.textContent()).toMatch(/Dee, .*: you both liked each other/);
      expect(await axeViolations(one.page)).toEqual([]);
    } finally {
      await one.context.close();
      await two.context.close();
    }
  });

  it('a page whose connection dropped gets the match made meanwhile when it is back (Last-Event-ID)', async () => {
    problems = new PageProblems();
    const { context, page } = await openContext(browser, base, problems);
    const resumed: string[] = [];
    page.on('request', (request) => {
      const last = request.headers()['last-event-id'];
      if (request.url().endsWith('/api/events') && last !== undefined) resumed.push(last);
    });
    problems.expected.push(/^request failed: GET .*\/api\/events/);
    try {
      await signUp(page, 'Eve', 'woman', ['man']);
      await page.getByRole('button', { name: 'Join the queue' }).click();
      await expect.poll(() => page.getByText('You are number 1 in your line').count()).toBe(1);
      // The connection drops (as through a proxy's restart) and the browser stays offline a while.
      await context.setOffline(true);
      app.server.closeAllConnections();
      await expect.poll(() => page.getByText('Reconnecting to Spin…').count()).toBe(1);
      // While Eve is offline, Finn joins and they are matched.
      const finn = await app.spin.store.createUser({
        displayName: 'Finn',
        gender: 'man',
        seeking: ['woman'],
      });
      await app.spin.store.join(finn.user);
      await expect.poll(async () => (await app.spin.store.history(finn.user.id, 1)).length).toBe(1);
      await context.setOffline(false);
      const card = page.getByRole('region', { name: 'Your match', exact: true });
      await expect.poll(() => card.textContent(), { timeout: 15_000 }).toContain('You have a match: Finn');
      expect(resumed.length).toBeGreaterThan(0);
      expect(await page.getByRole('region', { name: 'Your match', exact: true }).count()).toBe(1);
    } finally {
      await context.close();
    }
  });

  it('a join that fails for a moment is retried by itself; one that keeps failing can be tried again and reported', async () => {
    problems = new PageProblems();
    problems.expected.push(/^503 POST \/api\/queue\/join$/);
    const { context, page } = await openContext(browser, base, problems);
    try {
      await signUp(page, 'Gus', 'man', ['man']);
      const keys: string[] = [];
      let failures = 2;
      const unavailable = { code: 'BWK_ERR_STORE_UNAVAILABLE', message: 'The store is unavailable' };
      await page.route('**/api/queue/join', async (route) => {
        keys.push(route.request().headers()['idempotency-key'] ?? '');
        if (failures-- > 0)
          await route.fulfill({ status: 503, json: { error: unavailable }, headers: { 'retry-after': '1' } });
        else await route.continue();
      });
      await page.getByRole('button', { name: 'Join the queue' }).click();
      await expect
        .poll(() => page.getByText('You are number 1 in your line').count(), { timeout: 10_000 })
        .toBe(1);
      expect(keys).toHaveLength(3);
      expect(new Set(keys).size).toBe(1); // the same join each time: never two
      expect(await page.getByRole('alert').count()).toBe(0);
      await page.getByRole('button', { name: 'Leave the queue' }).click();
      await expect.poll(() => page.getByText('You are not in the queue.').count()).toBe(1);

      // Now it keeps failing: after its retries the page says so, with the code.
      failures = 1000;
      await page.getByRole('button', { name: 'Join the queue' }).click();
      const toast = page.getByRole('alert');
      await expect
        .poll(() => toast.textContent(), { timeout: 15_000 })
        .toContain('BWK_ERR_STORE_UNAVAILABLE');
      const reported = page.waitForResponse((res) => res.url().endsWith('/errors/browser'));
      await toast.getByRole('button', { name: 'Report a problem' }).click();
      expect((await reported).status()).toBe(202);
      await expect.poll(() => toast.textContent()).toContain('Reported: thank you.');
      failures = 0;
      await toast.getByRole('button', { name: 'Try again' }).click();
      await expect.poll(() => page.getByText('You are number 1 in your line').count()).toBe(1);
      await page.getByRole('button', { name: 'Leave the queue' }).click();
    } finally {
      await context.close();
    }
  });

  it('a failed request shows a message with its error code, which can be dismissed', async () => {
    problems = new PageProblems();
    problems.expected.push(/^400 POST \/api\/users$/);
    const { context, page } = await openContext(browser, base, problems);
    try {
      await page.goto('/');
      // A name longer than the server takes (the field's own limit lifted, as an old page might have).
      await page.evaluate("document.querySelector('input[maxlength]').removeAttribute('maxlength')");
      await page.getByLabel('Your name').fill('y'.repeat(41));
      await page.getByRole('button', { name: 'Sign up' }).click();
      const toast = page.getByRole('alert');
      await expect.poll(() => toast.textContent()).toMatch(/BWK_ERR_HTTP_VALIDATION/);
      await toast.getByRole('button', { name: 'Dismiss' }).click();
      expect(await page.getByRole('alert').count()).toBe(0);
    } finally {
      await context.close();
    }
  });
});

// Spin's waiting page in real Chromium (playwright-core + Debian's chromium): a newcomer signs up,
// joins and sees where they stand (place, the wait as a range or why there is none, the reason);
// two compatible people in two browsers are matched live and vote; a page offline while its match
// is made gets it when back (resumed with Last-Event-ID); a transient failure is retried by itself
// with the same Idempotency-Key; a lasting one shows its code (no alert()), can be tried again and
// reported to Bulwark's browser error endpoint; axe finds nothing serious, at 360 px wide too.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { axeViolations, openContext, PageProblems } from '../../../test/helpers/browser.js';
import { chromiumSpin, leaveQueue, signUp } from './chromium-spin.js';

const t = chromiumSpin((dir) => ({
  env: { BULWARK_DATA_DIR: dir, LOG_LEVEL: 'warn' },
  spin: { matchIntervalMs: 100, pollMs: 20 },
}));

/** The user's token, as the page keeps it. */
function token(page: Page): Promise<string> {
  return page.evaluate<string>("localStorage.getItem('spin.token') ?? ''");
}

describe("Spin's waiting page", () => {
  it('signs up, joins and shows the place, the estimate and why; leaves', async () => {
    t.problems = new PageProblems();
    const { context, page } = await openContext(t.browser, t.base, t.problems, { width: 360 });
    try {
      await page.goto('/');
      await signUp(page, 'Ann', 'woman', ['woman']);
      expect(await axeViolations(page)).toEqual([]);
      await page.getByRole('button', { name: 'Join the queue' }).click();
      const wait = page.getByRole('region', { name: 'Your wait' });
      await expect.poll(() => wait.getByText('You are number 1 in your line').count()).toBe(1);
      // Nobody matched yet: no range, and the reason says why.
      expect(await wait.getByText('No estimate yet').count()).toBe(1);
      expect(await wait.textContent()).toMatch(/nobody seeking your match has been matched/);
      await page.getByText('Why am I waiting?').click();
      const why = page.locator('details', { hasText: 'Why am I waiting?' });
      await expect.poll(() => why.textContent()).toMatch(/Right now only a few people wait/);
      expect(await why.textContent()).toMatch(/first come, first served/);
      expect(await why.textContent()).toMatch(/Why no estimate: too few people like you were matched lately/);
      expect(await axeViolations(page)).toEqual([]);
      // A reload keeps the user (the token is kept in the browser).
      await page.reload();
      await expect.poll(() => wait.getByText('You are number 1 in your line').count()).toBe(1);
      await leaveQueue(page);
    } finally {
      await context.close();
    }
  });

  it('two compatible people in two browsers are matched live, like each other and both see it', async () => {
    t.problems = new PageProblems();
    const one = await openContext(t.browser, t.base, t.problems);
    const two = await openContext(t.browser, t.base, t.problems);
    try {
      await one.page.goto('/');
      await signUp(one.page, 'Cat', 'nonbinary', ['nonbinary']);
      await two.page.goto('/');
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
    t.problems = new PageProblems();
    const { context, page } = await openContext(t.browser, t.base, t.problems);
    const resumed: string[] = [];
    page.on('request', (request) => {
      const last = request.headers()['last-event-id'];
      if (request.url().endsWith('/api/events') && last !== undefined) resumed.push(last);
    });
    t.problems.expected.push(/^request failed: GET .*\/api\/events/);
    try {
      await page.goto('/');
      await signUp(page, 'Eve', 'woman', ['man']);
      await page.getByRole('button', { name: 'Join the queue' }).click();
      await expect.poll(() => page.getByText('You are number 1 in your line').count()).toBe(1);
      // The connection drops (as through a proxy's restart) and the browser stays offline a while.
      await context.setOffline(true);
      t.app.server.closeAllConnections();
      await expect.poll(() => page.getByText('Reconnecting to Spin…').count()).toBe(1);
      // While Eve is offline, Finn joins and they are matched.
      const finn = await t.app.spin.store.createUser({
        displayName: 'Finn',
        gender: 'man',
        seeking: ['woman'],
      });
      await t.app.spin.store.join(finn.user);
      await expect.poll(async () => (await t.app.spin.store.history(finn.user.id, 1)).length).toBe(1);
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
    t.problems = new PageProblems();
    t.problems.expected.push(/^503 POST \/api\/queue\/join$/);
    const { context, page } = await openContext(t.browser, t.base, t.problems);
    try {
      await page.goto('/');
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
      await leaveQueue(page);

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

  it('works by keyboard alone: sign up, join, opt in to e-mail notices, leave', async () => {
    t.problems = new PageProblems();
    const { context, page } = await openContext(t.browser, t.base, t.problems, { width: 360 });
    /** Tabs forward until the focused element is `name`'s (fails if it is never reached). */
    const tabTo = async (name: RegExp) => {
      for (let i = 0; i < 30; i += 1) {
        await page.keyboard.press('Tab');
        // What has the focus: its tag, its label and its text ('' for the page itself: past the last element).
        const focused = await page.evaluate<string>(`(() => {
          const el = document.activeElement;
          if (el === null || el === document.body) return '';
          const label = el.closest('label')?.textContent ?? el.getAttribute('aria-label') ?? '';
          return (el.tagName + ' ' + label + ' ' + (el.textContent ?? '')).trim();
        })()`);
        if (name.test(focused)) return;
      }
      throw new Error(`${name} is not reachable with Tab`);
    };
    try {
      await page.goto('/');
      await tabTo(/Your name/);
      await page.keyboard.type('Kim');
      await tabTo(/INPUT\s+woman/); // the first radio of "You are"
      await page.keyboard.press('ArrowDown'); // → man
      await tabTo(/INPUT\s+man/); // "You seek": man is checked; uncheck it, check woman
      await page.keyboard.press('Space');
      await page.keyboard.down('Shift');
      await page.keyboard.press('Tab');
      await page.keyboard.up('Shift');
      await page.keyboard.press('Space');
      await tabTo(/Sign up/);
      await page.keyboard.press('Enter');
      await expect.poll(() => page.getByText('Hello Kim (man, seeking woman)').count()).toBe(1);
      await tabTo(/Join the queue/);
      await page.keyboard.press('Enter');
      await expect.poll(() => page.getByText('You are number 1 in your line').count()).toBe(1);
      await tabTo(/E-mail notices/);
      await page.keyboard.press('Enter');
      await tabTo(/When I am matched/);
      await page.keyboard.press('Space');
      await tabTo(/Your e-mail/);
      await page.keyboard.type('kim@example.com');
      await page.keyboard.press('Enter');
      await expect.poll(() => page.getByText('Saved.').count()).toBe(1);
      expect(await page.getByText('E-mail notices: on').count()).toBe(1);
      const me = (
        await t.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${await token(page)}` } })
      ).json<{
        email: string;
        notify: { match: boolean };
      }>();
      expect([me.email, me.notify.match]).toEqual(['kim@example.com', true]);
      expect(await axeViolations(page)).toEqual([]);
      await tabTo(/Leave the queue/);
      await page.keyboard.press('Enter');
      await expect.poll(() => page.getByText('You are not in the queue.').count()).toBe(1);
    } finally {
      await context.close();
    }
  });

  it('a failed request shows a message with its error code, which can be dismissed', async () => {
    t.problems = new PageProblems();
    t.problems.expected.push(/^400 POST \/api\/users$/);
    const { context, page } = await openContext(t.browser, t.base, t.problems);
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

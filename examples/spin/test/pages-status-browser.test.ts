// Spin's public queue status and its admins' queue dashboard in real Chromium, on an imbalanced
// queue (seed-imbalance.ts) with Spin's series sampled into the metrics history: the status shows
// health, who waits (rounded), the last day's waits and the trend charts, by range; the dashboard
// sends a signed-out admin to the console's sign-in and back, then shows the distribution, the
// recommendation with its numbers, the firing imbalance alert, the waits by window and the charts;
// the console links to it. axe finds nothing serious; screenshots of every page at desktop and
// 360 px wide go to test-results/console/ as artefacts.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { axeViolations, openContext, PageProblems, screenshot } from '../../../test/helpers/browser.js';
import { spinAlertRules } from '../src/stats-routes.js';
import { chromiumSpin, leaveQueue } from './chromium-spin.js';
import { seedImbalance } from './seed-imbalance.js';

const ADMIN_KEY = 'spin-pages-admin-key-0123456789';
const imbalance = spinAlertRules().find((rule) => rule.id === 'spin.imbalance-men')!;
const t = chromiumSpin(
  (dir) => ({
    env: { BULWARK_DATA_DIR: dir, LOG_LEVEL: 'warn', BULWARK_ADMIN_KEY: ADMIN_KEY },
    alerts: { receivers: [], rules: [{ ...imbalance, forMs: 0 }], evaluateEveryMs: 3_600_000 },
    // The matcher stays out of the way: the seed pairs the couples itself.
    spin: { matchIntervalMs: 3_600_000, pollMs: 20 },
  }),
  async ({ app, base }) => {
    await seedImbalance(app, base);
    await app.bulwark.metrics.history!.sampleNow();
    await app.bulwark.alerts!.evaluateOnce();
  },
);

/** Both widths: the page checked and shot at each. */
const WIDTHS = [
  { width: 1280, name: 'desktop' },
  { width: 360, name: '360' },
] as const;

/** The charts drawn (uPlot's canvases) and each one's table of numbers. */
async function charts(page: Page): Promise<{ drawn: number; tables: number }> {
  return {
    drawn: await page.locator('figure.chart canvas').count(),
    tables: await page.locator('figure.chart details table').count(),
  };
}

describe("Spin's status and dashboard pages", () => {
  for (const { width, name } of WIDTHS)
    it(`the public status shows health, who waits, the last day and the trends (${name})`, async () => {
      t.problems = new PageProblems();
      const { context, page } = await openContext(t.browser, t.base, t.problems, { width });
      try {
        await page.goto('/status');
        const waiting = page.getByRole('region', { name: 'Waiting now' });
        await expect.poll(() => waiting.textContent()).toContain('Waiting now: about 30');
        expect(await waiting.textContent()).toContain('30 men');
        // Two nonbinary people wait: rounded to 5, they show as 0 (nobody is singled out).
        expect(await waiting.textContent()).toContain('0 nonbinary people');
        const day = page.getByRole('region', { name: 'The last 24 hours' });
        expect(await day.textContent()).toContain('About 10 matches; 60% of them liked each other.');
        expect(await day.getByRole('row', { name: /^men/ }).textContent()).toMatch(/men14 min/);
        expect(await page.getByRole('region', { name: 'Health' }).textContent()).toMatch(/Normal|Degraded/);
        await expect.poll(() => charts(page)).toEqual({ drawn: 4, tables: 4 });
        await page.getByRole('button', { name: '7d' }).click();
        await expect
          .poll(() => page.getByRole('button', { name: '7d' }).getAttribute('aria-pressed'))
          .toBe('true');
        await expect.poll(() => charts(page)).toEqual({ drawn: 4, tables: 4 });
        expect(await axeViolations(page)).toEqual([]);
        await screenshot(page, `spin-status-${name}`);
      } finally {
        await context.close();
      }
    });

  it('the dashboard sends a signed-out admin to sign in and back, then shows the queue and what to do', async () => {
    t.problems = new PageProblems();
    // Signed out, the dashboard's first reads are answered 401 by design.
    t.problems.expected.push(/^401 GET \/admin\/api\/(spin\/queue-stats|alerts)/);
    const { context, page } = await openContext(t.browser, t.base, t.problems);
    try {
      await page.goto('/dashboard');
      await page.getByRole('link', { name: 'Sign in to the admin console' }).click();
      await page.getByLabel(/key/i).fill(ADMIN_KEY);
      await page.getByRole('button', { name: /sign in/i }).click();
      await page.waitForURL(`${t.base}/dashboard`);
      const waiting = page.getByRole('region', { name: 'Waiting now' });
      await expect.poll(() => waiting.textContent()).toContain('Waiting now: 32');
      expect(await waiting.textContent()).toContain('2 nonbinary people'); // exact for admins
      const advice = page.getByRole('region', { name: 'Recommendations' });
      expect(await advice.textContent()).toMatch(/Men outnumber women 4:1 .*waits for men p90 15 minutes/);
      const alerts = page.getByRole('region', { name: 'Alerts' });
      await expect.poll(() => alerts.textContent()).toMatch(/Gender imbalance: men seeking women outnumber/);
      const waits = page.getByRole('region', { name: 'Waits and success' });
      expect(await waits.getByRole('row', { name: /^men 1h/ }).textContent()).toMatch(/^men1h1014 min.*60%$/);
      await expect.poll(() => charts(page)).toEqual({ drawn: 5, tables: 5 });
      await page.getByRole('button', { name: '1h' }).click();
      await expect
        .poll(() => page.getByRole('button', { name: '1h' }).getAttribute('aria-pressed'))
        .toBe('true');
      await expect.poll(() => charts(page)).toEqual({ drawn: 5, tables: 5 });
      expect(await axeViolations(page)).toEqual([]);
      await screenshot(page, 'spin-dashboard-desktop');
      await page.setViewportSize({ width: 360, height: 900 });
      expect(await axeViolations(page)).toEqual([]);
      await screenshot(page, 'spin-dashboard-360');

      // The console's navigation links to it (the option console.links).
      await page.goto('/admin/');
      await page
        .getByRole('navigation', { name: 'Console' })
        .getByRole('link', { name: 'Spin queue dashboard' })
        .click();
      await page.waitForURL(`${t.base}/dashboard`);
      await expect.poll(() => page.getByRole('region', { name: 'Recommendations' }).count()).toBe(1);
      // A return address that a browser would read as another site's ("/<tab>/evil.example" is
      // "//evil.example") is not followed: the console stays.
      await page.goto('/admin/login?return=%2F%09%2Fevil.example');
      await page.waitForURL(`${t.base}/admin/`);
    } finally {
      await context.close();
    }
  });

  it('the waiting page, shot at both widths while waiting with the reason', async () => {
    t.problems = new PageProblems();
    for (const { width, name } of WIDTHS) {
      const { context, page } = await openContext(t.browser, t.base, t.problems, { width });
      try {
        const { token } = await t.app.spin.store.createUser({
          displayName: `Pat ${name}`,
          gender: 'man',
          seeking: ['woman'],
        });
        await page.goto('/');
        await page.evaluate(`localStorage.setItem('spin.token', ${JSON.stringify(token)})`);
        await page.reload();
        await page.getByRole('button', { name: 'Join the queue' }).click();
        const wait = page.getByRole('region', { name: 'Your wait' });
        await expect.poll(() => wait.textContent()).toMatch(/You are number \d+ in your line/);
        await page.getByText('Why am I waiting?').click();
        await expect.poll(() => page.getByText(/Over the last day, men waited/).count()).toBe(1);
        expect(await axeViolations(page)).toEqual([]);
        await screenshot(page, `spin-waiting-${name}`);
        await leaveQueue(page);
      } finally {
        await context.close();
      }
    }
  });
});

// Real Chromium for the console's browser tests: Debian's `chromium` driven by playwright-core
// (never a downloaded browser). Each test gets a fresh context; screenshots go to
// test-results/console/ as artefacts; any console error, failed request, uncaught exception or CSP
// violation in a page fails the test that opened it.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { requireBinary } from './binaries.js';
import { CHROMIUM_ARGS } from './chromium.js';

export const SCREENSHOTS = path.resolve('test-results', 'console');

/** Launches Debian's Chromium; a missing binary is a loud failure naming the package. */
export async function launchChromium(): Promise<Browser> {
  const executablePath = requireBinary('chromium', 'chromium');
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** What went wrong inside pages: console errors, page errors, failed requests, CSP violations. */
export class PageProblems {
  readonly problems: string[] = [];
  /** Problems to expect (e.g. `401 POST /admin/api/session` for a deliberately wrong key). */
  readonly expected: RegExp[] = [];
  /**
   * GETs answered 503 with a Retry-After: a transient refusal (Bulwark gives one only from the load
   * shedder, a full event-stream hub and the supervisor's proxy; here, the shedder of a test server
   * on a busy host) that the pages (the console's and Spin's API clients, EventSource) try again
   * after by design, so no problem; what the page then shows is what the test checks.
   */
  readonly retried: string[] = [];

  watch(page: Page): void {
    page.on('console', (message) => {
      // A failed answer is reported below with its URL; Chromium's own line for it has none.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource'))
        this.#add(`console: ${message.text()}`);
    });
    page.on('response', (response) => {
      const url = new URL(response.url());
      const line = `${response.status()} ${response.request().method()} ${url.pathname}`;
      if (
        response.status() === 503 &&
        response.request().method() === 'GET' &&
        response.headers()['retry-after'] !== undefined
      )
        this.retried.push(line);
      // Signed out, the console's first question (is there a session?) is answered 401 by design.
      else if (response.status() >= 400 && line !== '401 GET /admin/api/session') this.#add(line);
    });
    page.on('pageerror', (error) => this.#add(`page error: ${error.message}`));
    page.on('requestfailed', (request) => {
      const failure = request.failure()?.errorText ?? '';
      // Leaving a page aborts its live stream and pending loads: not a problem.
      if (failure.includes('ERR_ABORTED')) return;
      this.#add(`request failed: ${request.method()} ${request.url()} ${failure}`);
    });
  }

  #add(text: string): void {
    if (!this.expected.some((pattern) => pattern.test(text))) this.problems.push(text);
  }
}

/** A fresh browser context (its own cookies) on `baseURL`, with its pages watched. */
export async function openContext(
  browser: Browser,
  baseURL: string,
  problems: PageProblems,
  options: { width?: number } = {},
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({
    baseURL,
    viewport: { width: options.width ?? 1280, height: 900 },
    reducedMotion: 'reduce',
  });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  problems.watch(page);
  return { context, page };
}

/** Saves a full-page screenshot as `test-results/console/<name>.png`. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Listens on a free loopback port; resolves with the base URL (`http://127.0.0.1:<port>`). */
export async function listenOnLoopback(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('the app has no TCP address');
  return `http://127.0.0.1:${address.port}`;
}

/** Signs in on the console's sign-in page with `key` (the page waits for the overview only if asked). */
export async function signIn(page: Page, key: string): Promise<void> {
  await page.goto('/admin/');
  await page.getByLabel('Admin key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Waits until nothing on the page is loading (no `aria-busy` element). */
export async function settled(page: Page): Promise<void> {
  await expect.poll(() => page.locator('[aria-busy="true"]').count()).toBe(0);
}

/** Serious or critical accessibility violations (axe-core) of the page as it is now. */
export async function axeViolations(page: Page): Promise<string[]> {
  const result = await new AxeBuilder({ page }).analyze();
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.length})`);
}

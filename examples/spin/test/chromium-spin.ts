// One Spin listening on loopback and one real Chromium for a file of browser tests: made before
// its tests, closed after them (with the data directory), and each test's page problems (console
// errors, failed requests, CSP violations; test/helpers/browser.ts) checked after it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { launchChromium, PageProblems } from '../../../test/helpers/browser.js';
import { buildSpin } from '../src/app.js';

export type Spin = Awaited<ReturnType<typeof buildSpin>>;

export interface ChromiumSpin {
  app: Spin;
  /** `http://127.0.0.1:<port>` */
  base: string;
  browser: Browser;
  /** The current test's: set a fresh one at its start. */
  problems: PageProblems;
  /** A temporary directory, removed after the file's tests. */
  dir: string;
}

/**
 * Registers the file's hooks; the fields of what it returns are set once its `beforeAll` ran.
 * `options` builds Spin's options from the temporary directory (data under it); `ready` runs once
 * Spin listens (seeding).
 */
export function chromiumSpin(
  options: (dir: string) => Parameters<typeof buildSpin>[0],
  ready: (spin: ChromiumSpin) => Promise<void> = async () => undefined,
): ChromiumSpin {
  const spin = {
    dir: mkdtempSync(path.join(tmpdir(), 'spin-pages-')),
    problems: new PageProblems(),
  } as ChromiumSpin;
  beforeAll(async () => {
    spin.app = await buildSpin(options(spin.dir));
    spin.base = await spin.app.listen({ host: '127.0.0.1', port: 0 });
    await ready(spin);
    spin.browser = await launchChromium();
  }, 30_000);
  afterAll(async () => {
    await spin.browser?.close();
    await spin.app?.close();
    rmSync(spin.dir, { recursive: true, force: true });
  });
  afterEach(() => {
    expect(spin.problems.problems).toEqual([]);
  });
  return spin;
}

/** Signs up on the waiting page shown (name, gender, whom one seeks) and waits for the greeting. */
export async function signUp(page: Page, name: string, gender: string, seeking: string[]): Promise<void> {
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('group', { name: 'You are' }).getByLabel(gender, { exact: true }).check();
  const seek = page.getByRole('group', { name: 'You seek' });
  for (const g of ['woman', 'man', 'nonbinary'])
    await seek.getByLabel(g, { exact: true }).setChecked(seeking.includes(g));
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect.poll(() => page.getByText(`Hello ${name}`).count()).toBe(1);
}

/** Leaves the queue from the waiting page and waits until it says so. */
export async function leaveQueue(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Leave the queue' }).click();
  await expect.poll(() => page.getByText('You are not in the queue.').count()).toBe(1);
}

// The budgets of Spin's pages, read from the build (dist/spin/web, made by `npm run build`): the
// console's 100 KB of JavaScript gzipped for everything, and the waiting page, which people open on
// a phone, loading at most 30 KB gzipped before it draws (the status and the dashboard load their
// own code and uPlot only when opened).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = path.resolve(import.meta.dirname, '../../../dist/spin/web');
const gzipped = (name: string) => statSync(path.join(dir, 'assets', `${name}.gz`)).size;

describe("Spin's pages' budgets", () => {
  it('all their JavaScript ≤ 100 KB gzipped; what the waiting page loads first ≤ 30 KB', () => {
    const scripts = readdirSync(path.join(dir, 'assets')).filter((name) => name.endsWith('.js'));
    const total = scripts.reduce((sum, name) => sum + gzipped(name), 0);
    expect(total).toBeGreaterThan(0);
    expect(total).toBeLessThanOrEqual(100 * 1024);
    // The scripts index.html names (the entry and what it preloads), not the pages loaded later.
    const page = readFileSync(path.join(dir, 'index.html'), 'utf8');
    const first = [...page.matchAll(/assets\/([\w-]+\.js)/g)].map((m) => m[1]!);
    expect(first.length).toBeGreaterThan(0);
    expect(first.some((name) => name.startsWith('status') || name.startsWith('dashboard'))).toBe(false);
    expect(first.reduce((sum, name) => sum + gzipped(name), 0)).toBeLessThanOrEqual(30 * 1024);
  });
});

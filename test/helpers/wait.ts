/**
 * Polls `condition` every 10 ms until it holds, for state that no event announces (another process,
 * a background probe). Resolves with the time it took in ms; rejects after `timeoutMs`.
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<number> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return Date.now() - started;
}

/**
 * Rate-limit windows are clock-aligned: a test that must count within one window (fill it, then
 * see the next request refused) starts only when `needMs` are left in the current `windowMs`
 * window, waiting for the next window otherwise (up to `needMs`). Without it such a test fails
 * whenever its requests straddle a boundary.
 */
export async function roomInWindow(windowMs: number, needMs: number): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < needMs) await new Promise((resolve) => setTimeout(resolve, left + 20));
}

// Debian's Chromium as the browser tests and bench/console.ts run it (no vitest here: the bench
// imports it too).

/** Headless, with nothing that reaches out to the network. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

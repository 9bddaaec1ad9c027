// The supervisor link follows the environment a Bulwark reads its settings from: a second Bulwark in
// a supervised process, built with an `env` of its own (Spin's warm-up copy), must not open a second
// link — it would say hello as the instance, take the crash-report pipe and stop its worker on close.
import { fork } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';

it('only the Bulwark whose environment says BULWARK_SUPERVISED=1 links to the supervisor', async () => {
  const child = fork(path.join(import.meta.dirname, 'fixtures/two-bulwarks.ts'), [], {
    execArgv: ['--import', 'tsx'],
    env: { PATH: process.env['PATH'], LOG_LEVEL: 'silent', BULWARK_SUPERVISED: '1' },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const messages: { type?: string; fixture?: string; linked?: boolean }[] = [];
  child.on('message', (message: (typeof messages)[number]) => messages.push(message));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  expect(code).toBe(0);
  // What the supervisor would have seen, in order: one hello, from the app's Bulwark only.
  expect(messages.filter((m) => m.type !== 'bulwark:heartbeat').map((m) => m.type ?? m.fixture)).toEqual([
    'scratch',
    'bulwark:hello',
    'app',
  ]);
  expect(messages.filter((m) => m.fixture !== undefined)).toEqual([
    { fixture: 'scratch', linked: false },
    { fixture: 'app', linked: true },
  ]);
}, 60_000);

import { describe, expect, it } from 'vitest';
import { spawnTs } from './helpers/process.js';

describe('bulwark settings (text)', { timeout: 120_000 }, () => {
  it('prints one aligned column of values, unset ones as (unset), secrets masked', async () => {
    const run = spawnTs('src/cli/main.ts', ['settings'], {
      BULWARK_ADMIN_KEY: 'a-very-secret-admin-key-0123',
      BULWARK_MAX_REQUESTS_PER_SOCKET: '100',
    });
    expect((await run.exited).code).toBe(0);
    const lines = run.stdout().trimEnd().split('\n');
    // The longest name, maxRequestsPerSocket, sets the column: every value starts where the others do.
    const starts = new Set(lines.map((line) => /^\S+\s+/.exec(line)?.[0].length));
    expect(starts.size).toBe(1);
    expect(lines).toContainEqual(expect.stringMatching(/^maxRequestsPerSocket\s+100$/));
    expect(lines).toContainEqual(expect.stringMatching(/^redisUrl\s+\(unset\)$/));
    expect(run.stdout()).not.toContain('a-very-secret-admin-key-0123');
    expect(run.stdout()).not.toContain('undefined');
  });
});

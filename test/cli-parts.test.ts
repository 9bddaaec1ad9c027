import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { withParts } from '../src/cli/shared.js';
import type { Checkpointer } from '../src/store/checkpointer.js';

// What a CLI command opens: the parts it names, on the store the server uses, and nothing a
// short-lived process has no use for.
const dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-cli-parts-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
afterEach(() => vi.unstubAllEnvs());

describe('a CLI command’s parts', () => {
  it('open the SQLite store without a checkpoint thread (an app’s store starts one once its WAL grows)', async () => {
    vi.stubEnv('BULWARK_DATA_DIR', dataDir);
    const seen = await withParts(['flags'], async ({ store, flags }) => ({
      // Not part of the Store interface (test/store-checkpointer.test.ts reads it the same way).
      checkpointer: (store as unknown as { checkpointer: Checkpointer | undefined }).checkpointer,
      flags: flags.list().map((flag) => flag.key),
    }));
    // The parts work (the built-in kill switches are there) and the store has no worker.
    expect(seen.flags).toContain('bulwark.ratelimit');
    expect(seen.checkpointer).toBeUndefined();
  });
});

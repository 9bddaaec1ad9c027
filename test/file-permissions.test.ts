import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigManager } from '../src/config/index.js';
import { FlagService } from '../src/flags/service.js';
import { writeFileAtomic } from '../src/store/atomic-file.js';
import { createStore } from '../src/store/index.js';
import { serviceSchema } from './fixtures/config-schema.js';
import { checkoutFlag } from './helpers/flags.js';
import { until } from './helpers/wait.js';

const root = mkdtempSync(path.join(tmpdir(), 'bulwark-perms-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const modeOf = (file: string): string => (statSync(file).mode & 0o777).toString(8);
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

// The umask decides the mode of every file created without an explicit one: 022 is the usual
// default, 002 the default of many distributions for users with their own group.
describe.each(['022', '002'])('private files under umask %s', (umask) => {
  let previous: number;
  let dir: string;
  beforeEach(() => {
    previous = process.umask(parseInt(umask, 8));
    dir = mkdtempSync(path.join(root, 't-'));
  });
  afterEach(() => {
    process.umask(previous);
  });

  it('creates the data dir 0700 and bulwark.sqlite, its -wal and -shm 0600', async () => {
    const dataDir = path.join(dir, 'var', 'data');
    const warnings: string[] = [];
    const store = await createStore({ dataDir, onPermissionWarning: (m) => warnings.push(m) });
    try {
      await store.kv.put('ns', 'k', 1); // a write, so the WAL exists
      expect(modeOf(dataDir)).toBe('700');
      for (const name of ['bulwark.sqlite', 'bulwark.sqlite-wal', 'bulwark.sqlite-shm'])
        expect(modeOf(path.join(dataDir, name)), name).toBe('600');
    } finally {
      await store.close();
    }
    expect(warnings).toEqual([]);
  });

  it('tightens a looser data dir and database files it owns, with a warning', async () => {
    const dataDir = path.join(dir, 'data');
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o755);
    const first = await createStore({ dataDir, onPermissionWarning: () => undefined });
    await first.kv.put('ns', 'k', 1);
    await first.close();
    // As an older Bulwark (or a copy) left them.
    chmodSync(dataDir, 0o775);
    for (const name of ['bulwark.sqlite', 'bulwark.sqlite-wal', 'bulwark.sqlite-shm']) {
      const file = path.join(dataDir, name);
      if (!existsSync(file)) writeFileSync(file, '');
      chmodSync(file, 0o644);
    }
    const warnings: string[] = [];
    const store = await createStore({ dataDir, onPermissionWarning: (m) => warnings.push(m) });
    try {
      expect(await store.kv.get('ns', 'k')).toMatchObject({ value: 1 });
      expect(modeOf(dataDir)).toBe('700');
      for (const name of ['bulwark.sqlite', 'bulwark.sqlite-wal', 'bulwark.sqlite-shm'])
        expect(modeOf(path.join(dataDir, name)), name).toBe('600');
    } finally {
      await store.close();
    }
    expect(warnings).toEqual([
      expect.stringMatching(/data directory .* was 0775 .*tightened to 0700/),
      expect.stringMatching(/bulwark\.sqlite was 0644 .*tightened to 0600/),
      expect.stringMatching(/bulwark\.sqlite-wal was 0644/),
      expect.stringMatching(/bulwark\.sqlite-shm was 0644/),
    ]);
  });

  it('leaves the directory of an explicit sqliteFile as it is (it may be shared)', async () => {
    const shared = path.join(dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o755);
    const store = await createStore({ sqliteFile: path.join(shared, 'app.sqlite') });
    await store.close();
    expect(modeOf(shared)).toBe('755');
    expect(modeOf(path.join(shared, 'app.sqlite'))).toBe('600');
  });

  it('writes files atomically 0600 by default, with an exact mode, or keeping the old mode', async () => {
    const file = path.join(dir, 'state.json');
    await writeFileAtomic(file, '{}');
    expect(modeOf(file)).toBe('600');
    await writeFileAtomic(file, '{}', { mode: 0o640 });
    expect(modeOf(file)).toBe('640');
    chmodSync(file, 0o664);
    await writeFileAtomic(file, '{"a":1}', { keepMode: true });
    expect(modeOf(file)).toBe('664');
    const fresh = path.join(dir, 'fresh.json');
    await writeFileAtomic(fresh, '{}', { keepMode: true });
    expect(modeOf(fresh)).toBe('600');
  });

  it('writes the flags snapshot 0600', async () => {
    const store = await createStore({ dataDir: dir });
    const snapshotFile = path.join(dir, 'flags', 'flags.snapshot.json');
    const flags = new FlagService({ store, snapshotFile, pollMs: 60_000 });
    try {
      await flags.start();
      await flags.set(checkoutFlag, { actor: 'test', reason: 'permissions' });
      await until(() => existsSync(snapshotFile), 5_000, 'the snapshot');
      expect(modeOf(snapshotFile)).toBe('600');
      expect(modeOf(path.dirname(snapshotFile))).toBe('700');
    } finally {
      flags.close();
      await store.close();
    }
  });

  it('keeps the mode of the user’s config file, creates a new one 0600, and its revisions 0600', async () => {
    const file = path.join(dir, 'config.json');
    writeFileSync(file, '{ "port": 8080 }\n');
    chmodSync(file, 0o644);
    const config = new ConfigManager({ schema: serviceSchema, file, env: {}, logger: silent });
    await config.start();
    await config.set('port', 9090);
    await config.close();
    expect(modeOf(file)).toBe('644'); // the user's choice
    const revisions = path.join(dir, '.config.json.revisions');
    expect(modeOf(revisions)).toBe('700');
    expect(modeOf(path.join(revisions, '000002.json'))).toBe('600');

    const fresh = path.join(dir, 'new-config.json');
    const created = new ConfigManager({ schema: serviceSchema, file: fresh, env: {}, logger: silent });
    await created.start();
    await created.set('port', 9091);
    await created.close();
    expect(modeOf(fresh)).toBe('600');
  });
});

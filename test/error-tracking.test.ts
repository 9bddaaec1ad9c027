import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { isBulwarkError } from '../src/errors/index.js';
import type { Store } from '../src/store/index.js';
import {
  ErrorStore,
  ErrorTracker,
  fingerprintOf,
  messageTemplate,
  parseStack,
  type ErrorLimits,
  type TrackerFlags,
} from '../src/tracker/index.js';
import { postgresForFile, storeFixture } from './helpers/store.js';

const silent = pino({ level: 'silent' });

describe('fingerprints', () => {
  it('parses V8 and browser stacks; node_modules and node: frames are not in-app', () => {
    const frames = parseStack(
      [
        'TypeError: x is undefined',
        `    at loadUser (${process.cwd()}/src/users.ts:10:5)`,
        '    at async Object.handler (/srv/app/node_modules/fastify/lib/route.js:1:2)',
        '    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)',
        '    at file:///srv/app/dist/main.js:3:9',
      ].join('\n'),
    );
    expect(frames.map((f) => [f.fn, f.file, f.line, f.inApp])).toEqual([
      ['loadUser', 'src/users.ts', 10, true],
      ['Object.handler', '/srv/app/node_modules/fastify/lib/route.js', 1, false],
      ['process.processTicksAndRejections', 'node:internal/process/task_queues', 95, false],
      ['', '/srv/app/dist/main.js', 3, true],
    ]);
    const browser = parseStack(
      'render@https://app.example/static/app.js:12:34\n@https://app.example/x.js:1:1',
    );
    expect(browser[0]).toMatchObject({ fn: 'render', file: 'https://app.example/static/app.js', line: 12 });
  });

  it('templates what varies between occurrences', () => {
    expect(messageTemplate('User 42 not found')).toBe(messageTemplate('User 7 not found'));
    expect(
      messageTemplate(
        'Job 3f2b8c1e-1a2b-4c3d-9e8f-001122334455 for "alice" <a@b.io> at https://x.io/a?b failed after 3.5 s (0xdeadbeef9)',
      ),
    ).toBe('Job <uuid> for <str> <<email>> at <url> failed after <n> s (<hex>)');
  });

  it('groups by type, top in-app frames and template, not by line numbers', () => {
    const at = (line: number, fn = 'loadUser') =>
      parseStack(`Error: x\n    at ${fn} (src/users.ts:${line}:1)`);
    const a = fingerprintOf('TypeError', at(10), 'User <n> not found');
    expect(fingerprintOf('TypeError', at(99), 'User <n> not found')).toBe(a);
    expect(fingerprintOf('TypeError', at(10, 'saveUser'), 'User <n> not found')).not.toBe(a);
    expect(fingerprintOf('RangeError', at(10), 'User <n> not found')).not.toBe(a);
    expect(fingerprintOf('TypeError', at(10), 'User <n> gone')).not.toBe(a);
  });

  it('an anonymous frame shown as awaited ("at async <file>") is the same frame: same file, same group', () => {
    const sync = parseStack(
      `Error: x\n    at load (src/a.ts:1:1)\n    at ${process.cwd()}/test/b.test.ts:9:2`,
    );
    const awaited = parseStack(
      `Error: x\n    at load (src/a.ts:1:1)\n    at async ${process.cwd()}/test/b.test.ts:9:2`,
    );
    expect(awaited[1]).toMatchObject({ fn: '', file: 'test/b.test.ts', line: 9, inApp: true });
    expect(fingerprintOf('Error', awaited, 'x')).toBe(fingerprintOf('Error', sync, 'x'));
    // A named function awaited keeps its name without the keyword.
    expect(parseStack('Error: x\n    at async run (src/a.ts:1:1)')[0]).toMatchObject({
      fn: 'run',
      file: 'src/a.ts',
    });
  });
});

/** Flags for tests: every tool on unless switched off here. */
function flags(off: Set<string> = new Set()): TrackerFlags {
  return { isEnabled: (key, _context, fallback = false) => (off.has(key) ? false : fallback) };
}

const pgUrl = postgresForFile();

describe.each(['sqlite', 'postgres'] as const)('error tracker on %s', (engine) => {
  const fixture = storeFixture(engine, pgUrl);
  const trackers: ErrorTracker[] = [];
  afterEach(async () => {
    for (const errors of trackers.splice(0)) await errors.close();
  });

  async function tracker(
    opts: {
      off?: Set<string>;
      now?: () => number;
      store?: Store;
      samplesPerGroup?: number;
      limits?: Partial<ErrorLimits>;
    } = {},
  ) {
    const store = opts.store ?? (await fixture.open());
    const registry = new Registry();
    const errors = new ErrorTracker({
      errors: new ErrorStore(store.db),
      audit: store.audit,
      logger: silent,
      flags: flags(opts.off),
      release: '1.2.3',
      registry,
      ...(opts.samplesPerGroup === undefined ? {} : { samplesPerGroup: opts.samplesPerGroup }),
      ...(opts.now === undefined ? {} : { now: opts.now }),
      ...(opts.limits === undefined ? {} : { limits: opts.limits }),
    });
    trackers.push(errors);
    return { store, errors, registry };
  }

  function failLoading(id: number): Error {
    return new TypeError(`User ${id} not found`);
  }

  it('a burst of one error is one group with its count, bounded samples and their context', async () => {
    const { errors, registry } = await tracker({ samplesPerGroup: 8 });
    for (let i = 0; i < 100; i++) {
      errors.capture(failLoading(i), {
        request: { method: 'GET', route: '/users/:id', status: 500, requestId: `r${i}` },
        user: { id: `u${i}`, password: 'hunter2', apiKey: 'k-123' },
      });
      if (i % 10 === 9) await errors.flush();
    }
    await errors.flush();
    const groups = await errors.groups();
    expect(groups).toHaveLength(1);
    const [group] = groups;
    expect(group).toMatchObject({
      type: 'TypeError',
      message: 'User <n> not found',
      source: 'server',
      state: 'open',
      count: 100,
      firstRelease: '1.2.3',
      lastRelease: '1.2.3',
      regressions: 0,
    });
    expect(group?.culprit).toMatch(/^failLoading \(test\/error-tracking\.test\.ts:\d+\)$/);
    const { samples } = await errors.group(group?.fingerprint ?? '');
    expect(samples).toHaveLength(8);
    // Up to 5 samples per write (here every 10 captures): the newest kept is the 5th of the last 10.
    expect(samples[0]).toMatchObject({
      message: 'User 94 not found',
      request: { method: 'GET', route: '/users/:id', status: 500, requestId: 'r94' },
      user: { id: 'u94', password: '[redacted]', apiKey: '[redacted]' },
      level: 'error',
      handled: true,
    });
    expect(JSON.stringify(samples)).not.toContain('hunter2');
    expect(await registry.getSingleMetricAsString('bulwark_errors_captured_total')).toContain(
      'bulwark_errors_captured_total{source="server"} 100',
    );
  });

  it('resolved groups re-open when the error recurs (a regression); ignored ones keep counting, ignored', async () => {
    const { errors, store } = await tracker();
    const { fingerprint } = errors.capture(failLoading(1)) ?? { fingerprint: '' };
    const other = errors.capture(new RangeError('Quota 5 exceeded'))?.fingerprint ?? '';
    await errors.flush();
    expect((await errors.setState(fingerprint, 'resolved', 'alice', 'fixed in #12')).state).toBe('resolved');
    await errors.setState(other, 'ignored', 'alice');
    errors.capture(failLoading(2));
    errors.capture(new RangeError('Quota 9 exceeded'));
    await errors.flush();
    const reopened = (await errors.group(fingerprint)).group;
    expect(reopened).toMatchObject({ state: 'open', regressions: 1, count: 2, resolvedAt: undefined });
    expect((await errors.group(other)).group).toMatchObject({ state: 'ignored', count: 2 });
    const audit = await store.audit.list({ target: `error:${fingerprint}` });
    expect(audit[0]).toMatchObject({
      actor: 'alice',
      action: 'errors.resolve',
      detail: { reason: 'fixed in #12' },
    });
    await expect(errors.setState('00ff', 'resolved', 'alice')).rejects.toSatisfy((e) =>
      isBulwarkError(e, 'BWK_ERR_ERRORS_GROUP_NOT_FOUND'),
    );
  });

  it('follows its flags: off captures nothing; sampling off keeps exact counts without samples', async () => {
    const off = await tracker({ off: new Set(['bulwark.errors']) });
    expect(off.errors.capture(failLoading(1))).toBeUndefined();
    await off.errors.flush();
    expect(await off.errors.groups()).toEqual([]);

    const unsampled = await tracker({ off: new Set(['bulwark.errors.sample']) });
    for (let i = 0; i < 5; i++) expect(unsampled.errors.capture(failLoading(i))?.sampled).toBe(false);
    await unsampled.errors.flush();
    const [group] = await unsampled.errors.groups();
    expect(group?.count).toBe(5);
    expect((await unsampled.errors.group(group?.fingerprint ?? '')).samples).toEqual([]);
  });

  it('browser reports group apart from server errors and keep the page without its query', async () => {
    const { errors } = await tracker();
    const result = errors.captureBrowser({
      message: 'Cannot read properties of undefined (reading "id")',
      type: 'TypeError',
      stack: 'TypeError: x\n    at render (https://app.example/static/app.js:12:34)',
      url: 'https://app.example/cart?token=secret#top',
      release: 'web-7',
      user: { id: 'u1' },
    });
    await errors.flush();
    const { group, samples } = await errors.group(result?.fingerprint ?? '');
    expect(group).toMatchObject({ source: 'browser', type: 'TypeError', firstRelease: 'web-7' });
    expect(samples[0]).toMatchObject({
      url: 'https://app.example/cart',
      user: { id: 'u1' },
      source: 'browser',
    });
  });

  it('a browser flood with distinct fingerprints stays within its caps; server errors are still recorded', async () => {
    let now = Date.UTC(2026, 0, 1);
    const limits = {
      maxBrowserGroups: 20,
      browserSamplesPerGroup: 2,
      newBrowserGroupsPerMinute: 30,
      browserSampleBytes: 6 * 1024,
    };
    const { errors, store } = await tracker({ now: () => now, limits });
    // A real browser error, seen often: the flood must not evict it (least seen go first).
    const real = {
      message: 'Checkout failed',
      type: 'TypeError',
      stack: 'TypeError: x\n    at pay (https://shop/app.js:1:1)',
    };
    for (let i = 0; i < 5; i++) errors.captureBrowser(real);
    const realFingerprint = errors.captureBrowser(real)?.fingerprint ?? '';
    // Maximum-size reports, each its own group; escapes and multi-byte text make bytes > characters.
    const heavy = (n: number) => ({
      message: `${'é"\u0001'.repeat(700)} ${n}`,
      type: `Flood${n}`,
      stack: `Flood${n}: x\n${'    at f (https://evil/😀.js:1:1)\n'.repeat(400)}`,
      url: `https://evil/${'p'.repeat(1_990)}`,
      user: { id: 'u'.repeat(200), username: 'n'.repeat(200) },
    });
    let accepted = 0;
    for (let minute = 0; minute < 5; minute++) {
      for (let i = 0; i < 200; i++)
        if (errors.captureBrowser(heavy(minute * 1_000 + i)) !== undefined) accepted++;
      errors.capture(new RangeError(`Quota exceeded in minute ${minute}`)); // a server error meanwhile
      await errors.flush();
      now += 60_000;
    }
    expect(accepted).toBe(5 * 30 - 1); // the budget of new groups per minute (the real one used one)

    const groups = await store.db.selectFrom('bulwark_error_groups').selectAll().execute();
    const browser = groups.filter((g) => g.source === 'browser');
    expect(browser).toHaveLength(20);
    expect(browser.map((g) => g.fingerprint)).toContain(realFingerprint);
    expect(groups.filter((g) => g.source === 'server')).toHaveLength(1);
    expect((await errors.groups({ source: 'server' }))[0]).toMatchObject({ type: 'RangeError', count: 5 });
    const events = await store.db.selectFrom('bulwark_error_events').selectAll().execute();
    const bytes = (text: string) => Buffer.byteLength(text, 'utf8');
    const browserSamples = events.filter((e) => browser.some((g) => g.fingerprint === e.fingerprint));
    expect(browserSamples.length).toBeLessThanOrEqual(20 * 2);
    for (const sample of browserSamples) expect(bytes(sample.data)).toBeLessThanOrEqual(6 * 1024);
    // The bound documented in docs/error-tracking.md, per browser group: its row and its samples.
    const groupBytes = browser.map((g) => bytes(JSON.stringify(g)));
    expect(Math.max(...groupBytes)).toBeLessThanOrEqual(6 * 1024);
  });

  it('server groups and samples are capped too, oldest first', async () => {
    let now = Date.UTC(2026, 0, 1);
    const { errors, store } = await tracker({
      now: () => now,
      limits: { maxServerGroups: 10, maxServerSamples: 15, serverSamplesPerGroup: 3 },
    });
    for (let i = 0; i < 30; i++) {
      errors.capture(new Error(`Step ${'x'.repeat(i)} failed`));
      now += 1_000;
      await errors.flush();
    }
    const groups = await errors.groups({ limit: 100 });
    expect(groups).toHaveLength(10);
    expect(groups[0]?.message).toBe(`Step ${'x'.repeat(29)} failed`); // the newest are kept
    const events = await store.db.selectFrom('bulwark_error_events').select('id').execute();
    expect(events.length).toBeLessThanOrEqual(15);
  });

  it('retention deletes old samples and groups not seen within it', async () => {
    let now = Date.UTC(2026, 0, 1);
    const { errors } = await tracker({ now: () => now });
    errors.capture(failLoading(1));
    await errors.flush();
    now += 31 * 86_400_000;
    const fresh = errors.capture(new Error('Disk 3 full'))?.fingerprint ?? '';
    await errors.flush();
    expect(await errors.prune()).toEqual({ groups: 1, samples: 1 });
    expect((await errors.groups()).map((g) => g.fingerprint)).toEqual([fresh]);
  });

  it('a store that cannot be written keeps the occurrences and writes them later', async () => {
    const { errors, store } = await tracker();
    errors.capture(failLoading(1));
    const db = store.db;
    // Make the table unwritable for one flush by renaming it away.
    await db.schema.alterTable('bulwark_error_groups').renameTo('bulwark_error_groups_away').execute();
    await errors.flush();
    await db.schema.alterTable('bulwark_error_groups_away').renameTo('bulwark_error_groups').execute();
    errors.capture(failLoading(2));
    await errors.flush();
    expect((await errors.groups())[0]?.count).toBe(2);
  });
});

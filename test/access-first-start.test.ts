// The reference app's first start (src/app/server.ts, spawned as `npm start` runs it): with no key it
// prints one one-time login link, a new one each start until it is used, none afterwards, none with
// BULWARK_ADMIN_KEY or a key of one's own; the token opens one operator session; no secret but the
// link ever reaches the app's output.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Access, AccessTables } from '../src/access/types.js';
import { openParts } from '../src/runtime/create.js';
import type { Store } from '../src/store/types.js';
import { listeningPort, spawnTs, type Spawned } from './helpers/process.js';

const SERVER = 'src/app/server.ts';
const LINK =
  /^Admin console: open http:\/\/127\.0\.0\.1:(\d+)\/admin\/login#token=([A-Za-z0-9_-]{43}) .*bulwark keys create/m;
const dirs: string[] = [];
function dataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-first-start-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  server: Spawned;
  port: number;
  /** The token of the printed link, if one was printed. */
  token: string | undefined;
  /** Stops the server (SIGTERM) and resolves with everything it wrote. */
  stop(): Promise<string>;
}

/**
 * The demo app on port 0 with request logs on. The link is printed before the banner, so once the
 * banner is out the link is out too, or none will come.
 */
async function start(dir: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const server = spawnTs(SERVER, [], { PORT: '0', BULWARK_DATA_DIR: dir, LOG_LEVEL: 'info', ...env });
  const port = await listeningPort(server, /bulwark demo listening on http:\/\/127\.0\.0\.1:(\d+)/);
  const links = [...server.stdout().matchAll(new RegExp(LINK, 'gm'))];
  expect(links.length).toBeLessThanOrEqual(1);
  if (links[0] !== undefined) expect(Number(links[0][1])).toBe(port);
  return {
    server,
    port,
    token: links[0]?.[2],
    async stop() {
      server.child.kill('SIGTERM');
      await server.exited;
      return server.stdout() + server.stderr();
    },
  };
}

async function post(port: number, body: object): Promise<{ status: number; cookie: string; body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${port}/admin/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const cookie = /^bulwark_session=([^;]*)/.exec(res.headers.getSetCookie()[0] ?? '')?.[1] ?? '';
  return { status: res.status, cookie, body: await res.json() };
}

/** Every secret kept in the store of `dir`: key digests, session and token digests. */
async function storedDigests(dir: string): Promise<string[]> {
  const opened = await openParts(['store'], {
    env: {},
    dataDir: dir,
    logLevel: 'silent',
    metricsHistory: false,
  });
  try {
    const db = opened.get<Store>('store').db.withTables<AccessTables>();
    const rows = await Promise.all([
      db.selectFrom('bulwark_access_keys').select('digest').execute(),
      db.selectFrom('bulwark_access_sessions').select('digest').execute(),
      db.selectFrom('bulwark_access_tokens').select('digest').execute(),
    ]);
    return rows.flat().map((row) => row.digest);
  } finally {
    await opened.close();
  }
}

// Each test starts the app (tsx, seconds on a loaded machine) a few times in sequence.
describe('first start of the reference app', { timeout: 120_000 }, () => {
  it('prints a one-time link each start until it is used, then never; the token opens one session', async () => {
    const dir = dataDir();
    const first = await start(dir);
    expect(first.token).toBeDefined();
    const firstOutput = await first.stop();

    const second = await start(dir);
    expect(second.token).toBeDefined();
    expect(second.token).not.toBe(first.token);
    // The first start's link was replaced.
    expect((await post(second.port, { token: first.token })).status).toBe(401);
    const login = await post(second.port, { token: second.token });
    expect(login.status).toBe(200);
    expect(login.body).toMatchObject({ role: 'operator', actor: 'key:bootstrap' });
    const session = await fetch(`http://127.0.0.1:${second.port}/admin/api/session`, {
      headers: { cookie: `bulwark_session=${login.cookie}` },
    });
    expect(session.status).toBe(200);
    expect((await post(second.port, { token: second.token })).status).toBe(401);
    const secondOutput = await second.stop();

    const third = await start(dir);
    expect(third.token).toBeUndefined();
    const thirdOutput = await third.stop();

    // No secret in the output but each link's own token, once, on its line.
    const output = firstOutput + secondOutput + thirdOutput;
    for (const token of [first.token!, second.token!]) {
      expect(output.split(token).length - 1, 'times the token appears').toBe(1);
      expect(output.split('\n').find((line) => line.includes(token))).toMatch(LINK);
    }
    const csrf = (login.body as { csrfToken: string }).csrfToken;
    const digests = await storedDigests(dir);
    expect(digests.length).toBeGreaterThanOrEqual(2); // the bootstrap key and the session
    for (const secret of [
      login.cookie,
      csrf,
      ...digests,
      createHash('sha256').update(login.cookie).digest('hex'),
    ])
      expect(output).not.toContain(secret);
    expect(output).toContain('"msg":"request"');
  });

  it('prints nothing with BULWARK_ADMIN_KEY, or when a key was created first', async () => {
    const dir = dataDir();
    const opened = await openParts(['access'], {
      env: {},
      dataDir: dir,
      logLevel: 'silent',
      metricsHistory: false,
    });
    try {
      await opened.get<Access>('access').createKey('ada', 'operator', 'test');
    } finally {
      await opened.close();
    }
    const [withSetting, withKey] = await Promise.all([
      start(dataDir(), { BULWARK_ADMIN_KEY: 'an-admin-key-of-the-operator-0123' }),
      start(dir),
    ]);
    expect(withSetting.token).toBeUndefined();
    expect(withKey.token).toBeUndefined();
    for (const output of await Promise.all([withSetting.stop(), withKey.stop()]))
      expect(output).not.toContain('/admin/login');
  });
});

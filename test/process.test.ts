import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type net from 'node:net';
import { freePort, listeningPort, request, spawnTs, untilPeerRead } from './helpers/process.js';
import { until } from './helpers/wait.js';

const SERVER = 'src/app/server.ts';
const dirs: string[] = [];
function dataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-proc-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The demo app on port 0: the port it got is read from its start-up line. */
async function startServer(extraEnv: NodeJS.ProcessEnv = {}) {
  const server = spawnTs(SERVER, [], {
    PORT: '0',
    BULWARK_DATA_DIR: dataDir(),
    LOG_LEVEL: 'info',
    ...extraEnv,
  });
  const port = await listeningPort(server, /bulwark demo listening on http:\/\/127\.0\.0\.1:(\d+)/);
  return { server, port };
}

/**
 * Sends a slow POST /echo (the server answers after `delayMs`) and resolves once the server process
 * has read all of it, so a signal sent next finds it in flight; `answer` settles with the outcome.
 */
async function slowRequest(agent: http.Agent, port: number, delayMs: number) {
  let sent: http.ClientRequest | undefined;
  const answer = request(
    agent,
    port,
    { method: 'POST', path: '/echo', body: { message: 'slow', delayMs } },
    (r) => {
      sent = r;
    },
  ).catch((error: unknown) => error);
  await until(() => sent?.socket != null && sent.writableFinished, 20_000, 'the slow request written');
  await untilPeerRead(sent?.socket as net.Socket);
  return { answer };
}

describe('start-up validation', () => {
  it('PORT=abc exits 78 (a configuration error: not restarted by the supervisor) naming PORT', async () => {
    const server = spawnTs(SERVER, [], { PORT: 'abc', BULWARK_DATA_DIR: dataDir() });
    const { code } = await server.exited;
    expect(code).toBe(78);
    expect(server.stderr()).toMatch(/PORT: "abc" is invalid/);
    expect(server.stderr()).not.toContain('listening');
  });

  it('a config file that cannot be used, with no good revision to fall back to, exits 78 naming the file and the field', async () => {
    for (const [text, expected] of [
      ['{ "name": ', /BWK_ERR_CONFIG_PARSE.*config\.json/],
      ['{ "name": 5 }', /BWK_ERR_CONFIG_INVALID[\s\S]*name: must be string/],
    ] as const) {
      const dir = dataDir();
      writeFileSync(path.join(dir, 'config.json'), text);
      const server = spawnTs(SERVER, [], { PORT: '0', BULWARK_DATA_DIR: dir });
      const { code } = await server.exited;
      expect([code, server.stderr()]).toEqual([78, expect.stringMatching(expected) as unknown]);
      expect(server.stderr()).not.toContain('listening');
    }
  });

  it('serves its config file: GET / answers the configured name', async () => {
    const dir = dataDir();
    writeFileSync(path.join(dir, 'config.json'), '{ "name": "configured demo" }');
    const { server, port } = await startServer({ BULWARK_DATA_DIR: dir });
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      expect(((await res.json()) as { name: string }).name).toBe('configured demo');
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('an invalid DATABASE_URL and LOG_LEVEL are both named', async () => {
    const server = spawnTs(SERVER, [], {
      DATABASE_URL: 'mysql://u:pw@h/db',
      LOG_LEVEL: 'loud',
      BULWARK_DATA_DIR: dataDir(),
    });
    const { code } = await server.exited;
    expect(code).toBe(78);
    expect(server.stderr()).toContain('DATABASE_URL');
    expect(server.stderr()).toContain('LOG_LEVEL');
    expect(server.stderr()).not.toContain(':pw@');
  });

  it('an unreachable PostgreSQL exits 1 with BWK_ERR_STORE_UNAVAILABLE', async () => {
    const port = await freePort();
    const server = spawnTs(SERVER, [], {
      DATABASE_URL: `postgres://u:p@127.0.0.1:${port}/db`,
      BULWARK_DATA_DIR: dataDir(),
    });
    const { code } = await server.exited;
    expect(code).toBe(1);
    expect(server.stderr()).toContain('BWK_ERR_STORE_UNAVAILABLE');
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM under load: 0 failed requests, in-flight requests finish, exit 0', async () => {
    const { server, port } = await startServer();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const counts = { ok: 0, failed: 0, refused: 0 };
    const failures: string[] = [];
    let stop = false;

    const worker = async (): Promise<void> => {
      while (!stop) {
        try {
          const res = await request(agent, port, { method: 'POST', path: '/echo', body: { message: 'hi' } });
          if (res.status === 200) counts.ok += 1;
          else {
            counts.failed += 1;
            failures.push(`status ${res.status}`);
          }
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          // After the listener closed, new connections are refused: the client would go elsewhere.
          if (code === 'ECONNREFUSED') {
            counts.refused += 1;
            return;
          }
          counts.failed += 1;
          failures.push(String(code ?? error));
        }
      }
    };
    const workers = Array.from({ length: 16 }, () => worker());
    // Under load before the signal: a few answers, and the slow request read by the server.
    await until(() => counts.ok > 50, 20_000, 'load flowing');
    const slow = await slowRequest(agent, port, 800);
    const okBeforeSignal = counts.ok;
    server.child.kill('SIGTERM');
    const slowResult = await slow.answer;
    const exit = await server.exited;
    stop = true;
    await Promise.all(workers);
    agent.destroy();

    expect(failures).toEqual([]);
    expect(counts.failed).toBe(0);
    expect(okBeforeSignal).toBeGreaterThan(50);
    expect(slowResult).toMatchObject({ status: 200 });
    expect(exit.code).toBe(0);
    expect(server.stdout()).toContain('shut down cleanly');
  });

  it('exits 1 when in-flight work outlives the deadline', async () => {
    const { server, port } = await startServer({ BULWARK_SHUTDOWN_TIMEOUT_MS: '300' });
    const agent = new http.Agent({ keepAlive: true });
    const slow = await slowRequest(agent, port, 10_000);
    server.child.kill('SIGTERM');
    const exit = await server.exited;
    expect(exit.code).toBe(1);
    expect(server.stdout()).toContain('shutdown deadline passed');
    // The process ended before the 10 s of work did: the request was cut off, not answered.
    expect(await slow.answer).toBeInstanceOf(Error);
    agent.destroy();
  });

  it('a second signal exits 1 at once', async () => {
    const { server, port } = await startServer();
    const agent = new http.Agent({ keepAlive: true });
    const slow = await slowRequest(agent, port, 10_000);
    server.child.kill('SIGTERM');
    await server.waitFor('shutting down');
    server.child.kill('SIGINT');
    const exit = await server.exited;
    expect(exit.code).toBe(1);
    expect(server.stdout()).toContain('second signal');
    expect(await slow.answer).toBeInstanceOf(Error);
    agent.destroy();
  });
});

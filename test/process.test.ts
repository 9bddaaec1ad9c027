import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, request, spawnTs } from './helpers/process.js';

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

async function startServer(extraEnv: NodeJS.ProcessEnv = {}) {
  const port = await freePort();
  const server = spawnTs(SERVER, [], {
    PORT: String(port),
    BULWARK_DATA_DIR: dataDir(),
    LOG_LEVEL: 'info',
    ...extraEnv,
  });
  await server.waitFor('listening on');
  return { server, port };
}

describe('start-up validation', () => {
  it('PORT=abc exits 78 (a configuration error: not restarted by the supervisor) naming PORT', async () => {
    const server = spawnTs(SERVER, [], { PORT: 'abc', BULWARK_DATA_DIR: dataDir() });
    const { code } = await server.exited;
    expect(code).toBe(78);
    expect(server.stderr()).toMatch(/PORT: "abc" is invalid/);
    expect(server.stderr()).not.toContain('listening');
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
    await new Promise((r) => setTimeout(r, 300));
    const slow = request(agent, port, {
      method: 'POST',
      path: '/echo',
      body: { message: 'slow', delayMs: 800 },
    });
    await new Promise((r) => setTimeout(r, 100));
    const okBeforeSignal = counts.ok;
    server.child.kill('SIGTERM');
    const slowResult = await slow;
    const exit = await server.exited;
    stop = true;
    await Promise.all(workers);
    agent.destroy();

    expect(failures).toEqual([]);
    expect(counts.failed).toBe(0);
    expect(okBeforeSignal).toBeGreaterThan(50);
    expect(slowResult.status).toBe(200);
    expect(exit.code).toBe(0);
    expect(server.stdout()).toContain('shut down cleanly');
  });

  it('exits 1 when in-flight work outlives the deadline', async () => {
    const { server, port } = await startServer({ BULWARK_SHUTDOWN_TIMEOUT_MS: '300' });
    const agent = new http.Agent({ keepAlive: true });
    const slow = request(agent, port, {
      method: 'POST',
      path: '/echo',
      body: { message: 'slow', delayMs: 10_000 },
    }).catch((error: unknown) => error);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    server.child.kill('SIGTERM');
    const exit = await server.exited;
    expect(exit.code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(server.stdout()).toContain('shutdown deadline passed');
    await slow;
    agent.destroy();
  });

  it('a second signal exits 1 at once', async () => {
    const { server, port } = await startServer();
    const agent = new http.Agent({ keepAlive: true });
    const slow = request(agent, port, {
      method: 'POST',
      path: '/echo',
      body: { message: 'slow', delayMs: 10_000 },
    }).catch((error: unknown) => error);
    await new Promise((r) => setTimeout(r, 100));
    server.child.kill('SIGTERM');
    await server.waitFor('shutting down');
    server.child.kill('SIGINT');
    const exit = await server.exited;
    expect(exit.code).toBe(1);
    expect(server.stdout()).toContain('second signal');
    await slow;
    agent.destroy();
  });
});

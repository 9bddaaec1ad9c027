// During the shutdown drain the demo app (a real process) tells load balancers to go elsewhere:
// /health/ready answers 503 on a connection that was open before SIGTERM, while a slow request
// is still being served.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { request, spawnTs, type Spawned } from './helpers/process.js';
import { until } from './helpers/wait.js';

const dirs: string[] = [];
const servers: Spawned[] = [];
afterAll(() => {
  for (const server of servers) server.child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The demo app on a port the kernel picks (PORT=0), read back from its start-up line. */
async function startDemo(env: NodeJS.ProcessEnv = {}): Promise<{ server: Spawned; port: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-drain-'));
  dirs.push(dir);
  const server = spawnTs('src/app/server.ts', [], {
    PORT: '0',
    BULWARK_DATA_DIR: dir,
    LOG_LEVEL: 'info',
    ...env,
  });
  servers.push(server);
  const listening = /bulwark demo listening on http:\/\/[^\s]+:(\d+)/;
  // Generous: tsx compiles the whole app at start, which takes many seconds on a loaded machine.
  await server.waitFor(listening, 90_000);
  return { server, port: Number(listening.exec(server.stderr())?.[1]) };
}

interface Answer {
  status: number;
  connection: string | undefined;
  /** The client side of the TCP connection: equal ports mean the same kept-alive connection. */
  localPort: number | undefined;
  body: string;
}

/** GET over `agent` (one kept-alive socket), with the connection header and which socket carried it. */
function getOver(agent: http.Agent, port: number, pathname: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathname, agent }, (res) => {
      // Read now: the socket goes back to the agent (res.socket null) before 'end'.
      const localPort = res.socket.localPort;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          connection: res.headers.connection,
          localPort,
          body,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

describe('shutdown drain (demo app, real process)', () => {
  it(
    'SIGTERM with a request in flight on a connection its client keeps open: answered with Connection: close, exit 0 long before the deadline',
    { timeout: 180_000 },
    async () => {
      // A deadline long enough that only a clean close can end the process: one held to the
      // deadline exits 1.
      const { server, port } = await startDemo({ BULWARK_SHUTDOWN_TIMEOUT_MS: '60000' });
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        await until(
          async () => (await getOver(agent, port, '/health/ready')).status === 200,
          30_000,
          'ready',
        );
        // `Expect: 100-continue`: the server answers "continue" once it has read the headers and
        // handed the request to Fastify, so the signal provably comes after the request began.
        let began!: () => void;
        const begun = new Promise<void>((resolve) => (began = resolve));
        const inFlight = new Promise<Answer>((resolve, reject) => {
          const req = http.request(
            {
              host: '127.0.0.1',
              port,
              agent,
              method: 'POST',
              path: '/echo',
              headers: { 'content-type': 'application/json', expect: '100-continue' },
            },
            (res) => {
              res.resume();
              res.on('end', () =>
                resolve({
                  status: res.statusCode ?? 0,
                  connection: res.headers.connection,
                  localPort: undefined,
                  body: '',
                }),
              );
            },
          );
          req.on('continue', () => {
            req.end(JSON.stringify({ message: 'slow', delayMs: 1_500 }));
            began();
          });
          req.on('error', reject);
        });
        await begun;
        server.child.kill('SIGTERM');
        const answer = await inFlight;
        // The agent keeps every socket it may reuse: only the server can end this connection.
        expect({ status: answer.status, connection: answer.connection }).toEqual({
          status: 200,
          connection: 'close',
        });
        expect(await server.exited, server.stdout().slice(-2000)).toEqual({ code: 0, signal: null });
      } finally {
        agent.destroy();
      }
    },
  );

  it(
    'SIGTERM with a slow request in flight: /health/ready answers 503 on an open keep-alive connection, then exit 0',
    { timeout: 180_000 },
    async () => {
      const { server, port } = await startDemo();
      const probes = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const slowAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        // Both connections are open before the signal (a new one is refused once the listener closes).
        let first: Answer | undefined;
        await until(
          async () => (first = await getOver(probes, port, '/health/ready')).status === 200,
          30_000,
          'ready',
        );
        expect((await getOver(slowAgent, port, '/health/live')).status).toBe(200);
        const slow = request(slowAgent, port, {
          method: 'POST',
          path: '/echo',
          body: { message: 'slow', delayMs: 3_000 },
        }).catch((error: unknown) => error); // asserted below; a failed test must not leave it unhandled

        server.child.kill('SIGTERM');
        // Ask again and again on the same connection. Until the signal is handled: ready, kept alive.
        // The first answer of the drain closes the connection: it must say "not ready".
        const answers: Answer[] = [];
        for (;;) {
          const answer = await getOver(probes, port, '/health/ready');
          answers.push(answer);
          if (answer.connection === 'close') break;
        }
        const last = answers.at(-1)!;
        expect(answers.slice(0, -1).filter((a) => a.status !== 200 || a.connection !== 'keep-alive')).toEqual(
          [],
        );
        expect({ status: last.status, connection: last.connection }).toEqual({
          status: 503,
          connection: 'close',
        });
        expect(JSON.parse(last.body)).toMatchObject({
          status: 'fail',
          checks: { 'service:lifecycle': [{ status: 'fail', observedValue: 'stopping' }] },
        });
        expect(new Set(answers.map((a) => a.localPort))).toEqual(new Set([first?.localPort]));

        // The drain still finishes the in-flight request, then the process exits cleanly.
        expect(await slow).toMatchObject({ status: 200 });
        expect(await server.exited, server.stdout().slice(-2000)).toEqual({ code: 0, signal: null });
        expect(server.stdout()).toContain('closing: readiness now fails, draining connections');
      } finally {
        probes.destroy();
        slowAgent.destroy();
      }
    },
  );
});

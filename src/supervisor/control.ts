import { createHash } from 'node:crypto';
import { mkdir, unlink } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { bulwarkError, isBulwarkError } from '../errors/index.js';
import type { Supervisor } from './supervisor.js';

/**
 * The control socket of the supervisor for `stateDir` (HTTP over a Unix socket, mode 0600):
 * `<stateDir>/control.sock`, or, when that path is too long for a Unix socket (about 104 bytes),
 * a name in the temp directory derived from `stateDir`.
 */
export function controlSocketPath(stateDir: string): string {
  const inside = path.join(stateDir, 'control.sock');
  if (Buffer.byteLength(inside) <= 100) return inside;
  const hash = createHash('sha256').update(path.resolve(stateDir)).digest('hex').slice(0, 16);
  return path.join(os.tmpdir(), `bulwark-supervise-${hash}.sock`);
}

function send(response: http.ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = typeof body === 'string' ? body : `${JSON.stringify(body, null, 2)}\n`;
  response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

/** The body of an error answer, like the app's: `{ error: { code, message } }`. */
function errorBody(error: unknown): { error: { code: string; message: string } } {
  return isBulwarkError(error)
    ? { error: { code: error.code, message: error.message } }
    : { error: { code: 'BWK_ERR_HTTP_INTERNAL', message: (error as Error).message } };
}

function sendError(response: http.ServerResponse, error: unknown): void {
  send(response, isBulwarkError(error) ? error.statusCode : 500, errorBody(error));
}

/**
 * Routes of the supervisor's servers. The control socket (`admin: true`) takes every route; the
 * metrics port only reads: GET /metrics, /status, /events.
 */
function handler(supervisor: Supervisor, admin: boolean, onStop: () => void): http.RequestListener {
  return (request, response) => {
    const url = new URL(request.url ?? '/', 'http://supervisor');
    const route = `${request.method ?? 'GET'} ${url.pathname}`;
    void (async () => {
      try {
        switch (route) {
          case 'GET /metrics':
            send(
              response,
              200,
              await supervisor.metrics.registry.metrics(),
              supervisor.metrics.registry.contentType,
            );
            return;
          case 'GET /status':
            send(response, 200, supervisor.status());
            return;
          case 'GET /events':
            send(response, 200, { events: supervisor.events(url.searchParams.get('since') ?? undefined) });
            return;
          case 'POST /reload':
            if (!admin) break;
            {
              const result = await supervisor.reload();
              if (result.ok) send(response, 200, result);
              else
                send(response, 500, {
                  ...errorBody(bulwarkError('BWK_ERR_SUPERVISOR_RELOAD_FAILED', { detail: result.detail })),
                  reload: result,
                });
            }
            return;
          case 'POST /stop':
            if (!admin) break;
            send(response, 202, { stopping: true });
            onStop();
            return;
        }
        send(response, 404, { error: { code: 'BWK_ERR_HTTP_NOT_FOUND', message: `no route ${route}` } });
      } catch (error) {
        sendError(response, error);
      }
    })();
  };
}

/** The servers a supervisor answers on: the control socket and, if asked for, the metrics port. */
export class ControlServers {
  readonly #servers: http.Server[] = [];
  metricsPort: number | undefined;

  /**
   * Listens on the control socket (refusing when another supervisor answers on it; a stale socket
   * of a dead one is replaced) and on `metricsPort` when set.
   */
  async start(supervisor: Supervisor, onStop: () => void): Promise<void> {
    const socket = controlSocketPath(supervisor.options.stateDir);
    if (
      await requestSupervisor(supervisor.options.stateDir, 'GET', '/status', 500).then(
        () => true,
        () => false,
      )
    )
      throw bulwarkError('BWK_ERR_SUPERVISOR_BUSY', {
        state: `already running for ${supervisor.options.stateDir} (another supervisor answers on ${socket})`,
      });
    await mkdir(supervisor.options.stateDir, { recursive: true });
    await unlink(socket).catch(() => undefined);
    const control = http.createServer(handler(supervisor, true, onStop));
    await new Promise<void>((resolve, reject) => {
      control.once('error', reject);
      control.listen({ path: socket, readableAll: false, writableAll: false }, resolve);
    });
    this.#servers.push(control);
    const { metricsPort, metricsHost } = supervisor.options;
    if (metricsPort !== undefined) {
      const metrics = http.createServer(handler(supervisor, false, onStop));
      await new Promise<void>((resolve, reject) => {
        metrics.once('error', reject);
        metrics.listen({ port: metricsPort, host: metricsHost }, resolve);
      });
      const address = metrics.address();
      this.metricsPort = typeof address === 'object' && address !== null ? address.port : metricsPort;
      this.#servers.push(metrics);
    }
  }

  async close(): Promise<void> {
    await Promise.all(
      this.#servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
  }
}

/**
 * One request to the supervisor of `stateDir` over its control socket; resolves with the parsed
 * JSON body and status. Rejects with BWK_ERR_SUPERVISOR_NOT_RUNNING when nothing answers.
 */
export function requestSupervisor(
  stateDir: string,
  method: 'GET' | 'POST',
  route: string,
  timeoutMs = 120_000,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { socketPath: controlSocketPath(stateDir), method, path: route, timeout: timeoutMs },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          try {
            resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
          } catch {
            reject(new Error(`not a supervisor answer: ${text.slice(0, 200)}`));
          }
        });
      },
    );
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', () => reject(bulwarkError('BWK_ERR_SUPERVISOR_NOT_RUNNING', { stateDir })));
    request.end();
  });
}

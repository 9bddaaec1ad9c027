import { chmod, mkdtemp, rm, unlink } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { bulwarkError, isBulwarkError } from '../errors/index.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { PRIVATE_FILE_MODE } from '../store/permissions.js';
import {
  CONTROL_SOCKET,
  CONTROL_SOCKET_POINTER,
  MAX_SOCKET_PATH,
  controlSocketPath,
  locateControlSocket,
  requestSupervisor,
} from '../supervised/control-client.js';
import { privateDir } from './private-files.js';
import type { Supervisor } from './supervisor.js';

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
  /** The control socket's path once listening. */
  socketPath: string | undefined;
  /** The private temp directory holding the socket, when the state directory's path is too long. */
  #tempDir: string | undefined;
  /** The file recording the socket's path in the state directory, with {@link #tempDir}. */
  #pointer: string | undefined;

  /**
   * Listens on the control socket (refusing when another supervisor answers on it; a stale socket
   * of a dead one is replaced) and on `metricsPort` when set.
   *
   * The socket takes every command (reload, stop), so no other user may connect to it, even for an
   * instant and whatever the umask: it is created inside a directory only this user can enter (the
   * state directory, made 0700 first, or a fresh `mkdtemp` directory), then made 0600 itself.
   */
  async start(supervisor: Supervisor, onStop: () => void): Promise<void> {
    const stateDir = supervisor.options.stateDir;
    const running = await locateControlSocket(stateDir);
    if (
      await requestSupervisor(stateDir, 'GET', '/status', 500).then(
        () => true,
        () => false,
      )
    )
      throw bulwarkError('BWK_ERR_SUPERVISOR_BUSY', {
        state: `already running for ${stateDir} (another supervisor answers on ${running ?? '?'})`,
      });
    privateDir(stateDir);
    let socket = controlSocketPath(stateDir);
    if (socket === undefined) {
      // A dead supervisor's directory: ours (locateControlSocket checked), so ours to remove.
      if (running !== undefined) await rm(path.dirname(running), { recursive: true, force: true });
      this.#tempDir = await mkdtemp(path.join(socketTempDir(), 'bulwark-sup-'));
      socket = path.join(this.#tempDir, CONTROL_SOCKET);
      this.#pointer = path.join(stateDir, CONTROL_SOCKET_POINTER);
      await writeFileAtomic(this.#pointer, `${socket}\n`);
    } else await unlink(socket).catch(() => undefined);
    const control = http.createServer(handler(supervisor, true, onStop));
    await new Promise<void>((resolve, reject) => {
      control.once('error', reject);
      control.listen({ path: socket }, resolve);
    });
    this.#servers.push(control);
    await chmod(socket, PRIVATE_FILE_MODE);
    this.socketPath = socket;
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

  /** Closes the servers; removes the socket's temp directory and its record, if any. */
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
    const tempDir = this.#tempDir;
    if (tempDir === undefined) return;
    this.#tempDir = undefined;
    await rm(tempDir, { recursive: true, force: true });
    if (this.#pointer !== undefined) await unlink(this.#pointer).catch(() => undefined);
  }
}

/** The temp directory, or `/tmp` when `$TMPDIR` is too long to hold a socket path. */
function socketTempDir(): string {
  const longest = path.join(os.tmpdir(), 'bulwark-sup-XXXXXX', CONTROL_SOCKET);
  return Buffer.byteLength(longest) <= MAX_SOCKET_PATH ? os.tmpdir() : '/tmp';
}

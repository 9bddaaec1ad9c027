// The client side of the supervisor's control socket, for the app (its supervisor series), the CLI
// and the admin API: where the socket is and one request to it. The server is `supervisor/control.ts`.
import { lstat, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { bulwarkError } from '../errors/index.js';

/** The control socket's file name. */
export const CONTROL_SOCKET = 'control.sock';
/** In the state directory when the socket is elsewhere: the path of the socket. */
export const CONTROL_SOCKET_POINTER = 'control.sock.path';
/** Longest Unix socket path on every platform (sun_path is 104 bytes on macOS, 108 on Linux). */
export const MAX_SOCKET_PATH = 100;

/**
 * The control socket of the supervisor for `stateDir` when it is in the state directory
 * (`<stateDir>/control.sock`), or undefined when that path is too long for a Unix socket: the
 * socket is then in a private directory made with `mkdtemp` in the temp directory, recorded in
 * `<stateDir>/control.sock.path` (see {@link locateControlSocket}).
 */
export function controlSocketPath(stateDir: string): string | undefined {
  const inside = path.join(path.resolve(stateDir), CONTROL_SOCKET);
  return Buffer.byteLength(inside) <= MAX_SOCKET_PATH ? inside : undefined;
}

/**
 * Where clients reach the supervisor of `stateDir`: {@link controlSocketPath}, else the path
 * recorded in the state directory, provided it lies in a directory of this user that no one else
 * can enter (a name in the temp directory could otherwise be another user's, made after ours was
 * removed). Undefined when there is none.
 */
export async function locateControlSocket(stateDir: string): Promise<string | undefined> {
  const inside = controlSocketPath(stateDir);
  if (inside !== undefined) return inside;
  let socket: string;
  try {
    socket = (await readFile(path.join(stateDir, CONTROL_SOCKET_POINTER), 'utf8')).trim();
  } catch {
    return undefined;
  }
  return (await isPrivateDir(path.dirname(socket))) ? socket : undefined;
}

/** True when `dir` is a directory (not a link) of this user with no access for anyone else. */
async function isPrivateDir(dir: string): Promise<boolean> {
  const stat = await lstat(dir).catch(() => undefined);
  return (
    stat !== undefined &&
    stat.isDirectory() &&
    stat.uid === (process.getuid?.() ?? stat.uid) &&
    (stat.mode & 0o077) === 0
  );
}

/**
 * One request to the supervisor of `stateDir` over its control socket; resolves with the parsed
 * JSON body and status. Rejects with BWK_ERR_SUPERVISOR_NOT_RUNNING when nothing answers.
 */
export async function requestSupervisor(
  stateDir: string,
  method: 'GET' | 'POST',
  route: string,
  timeoutMs = 120_000,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const socketPath = await locateControlSocket(stateDir);
  if (socketPath === undefined) throw bulwarkError('BWK_ERR_SUPERVISOR_NOT_RUNNING', { stateDir });
  return new Promise((resolve, reject) => {
    const request = http.request({ socketPath, method, path: route, timeout: timeoutMs }, (response) => {
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
    });
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', () => reject(bulwarkError('BWK_ERR_SUPERVISOR_NOT_RUNNING', { stateDir })));
    request.end();
  });
}

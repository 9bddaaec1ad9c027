// Ports for test servers. Prefer binding port 0 in the process that serves and reading the port
// back; `onFreePort` is for what must be told its port in advance (redis-server, PostgreSQL,
// `bulwark supervise --port`, fixtures that bind a fixed PORT): a port picked free can be taken by
// any other process (an outbound connection, a parallel test) before the server binds it.
import { createServer } from 'node:net';

/**
 * What a server prints when its port is taken: Node (`EADDRINUSE`), redis-server ("Address already
 * in use"), PostgreSQL ("could not bind"), the supervisor (`BWK_ERR_SUPERVISOR_PORT_BUSY`, "Port N
 * is still in use").
 */
export const PORT_IN_USE =
  /EADDRINUSE|address already in use|could not bind|BWK_ERR_SUPERVISOR_PORT_BUSY|port \d+ is still in use/i;

/** A start failed because its port was taken; {@link onFreePort} then tries a fresh port. */
export class PortInUseError extends Error {
  readonly port: number;
  constructor(port: number, detail: string) {
    super(`port ${port} is already in use:\n${detail}`);
    this.name = 'PortInUseError';
    this.port = port;
  }
}

/** True when `error` says its port was taken: a {@link PortInUseError}, or a message matching {@link PORT_IN_USE}. */
export function isPortInUse(error: unknown): boolean {
  return error instanceof PortInUseError || (error instanceof Error && PORT_IN_USE.test(error.message));
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (bound, then released): nothing listens on it
 * when this resolves, but anything may bind it at any time. Fine as a port where nothing listens
 * (to provoke a refused connection); to serve on it, go through {@link onFreePort}.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

/** How {@link onFreePort} picks ports; the defaults suit every test (overridden by the helpers' own tests). */
export interface PortChoice {
  /** Start attempts in all, each on a fresh port (default 5). */
  attempts?: number;
  /** Picks the port of each attempt (default {@link freePort}). */
  pick?: () => Promise<number>;
}

/**
 * Calls `start(port)` with a port picked free; when it fails because that port was taken in the
 * meantime ({@link isPortInUse}), calls it again with a fresh port, up to `attempts` times in all.
 * `start` must leave nothing running when it throws. Any other failure, or the last port-in-use
 * one, is rethrown.
 */
export async function onFreePort<T>(
  start: (port: number) => Promise<T>,
  choice: PortChoice = {},
): Promise<T> {
  const attempts = choice.attempts ?? 5;
  const pick = choice.pick ?? freePort;
  for (let attempt = 1; ; attempt++) {
    const port = await pick();
    try {
      return await start(port);
    } catch (error) {
      if (!isPortInUse(error) || attempt >= attempts) throw error;
    }
  }
}

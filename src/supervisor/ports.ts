import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { bulwarkError } from '../errors/index.js';

/** True when `port` can be bound on `host` now. */
export function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port the OS has free now on `host`. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/**
 * Waits until `port` can be bound on `host` (polled every 25 ms), for direct mode where the app
 * binds the public port itself and an orphan may still hold it.
 *
 * @throws `BWK_ERR_SUPERVISOR_PORT_BUSY` when it is still taken after `waitMs`.
 */
export async function waitForFreePort(host: string, port: number, waitMs: number): Promise<void> {
  const started = Date.now();
  for (;;) {
    if (await portIsFree(host, port)) return;
    if (Date.now() - started > waitMs)
      throw bulwarkError('BWK_ERR_SUPERVISOR_PORT_BUSY', {
        port,
        waitedMs: Date.now() - started,
        holder: 'another process (not one this supervisor started)',
      });
    await sleep(25);
  }
}

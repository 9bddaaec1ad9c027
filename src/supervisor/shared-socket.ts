import { writeFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import path from 'node:path';
import { bulwarkError } from '../errors/index.js';
import { PRELOAD_SOURCE } from './preload.js';

/** The app's file descriptor of the shared listening socket. */
export const LISTEN_FD = 5;
/** The app's file descriptor of its listen channel with the supervisor (a socketpair). */
export const CHANNEL_FD = 6;

/** A TCP handle as Node's internal `_createServerHandle` returns it (the part used here). */
interface ServerHandle {
  readonly fd: number;
  getsockname(out: { port?: number; address?: string }): number;
  close(): void;
}

type CreateServerHandle = (
  address: string,
  port: number,
  addressType: number,
  fd?: number,
  flags?: number,
) => ServerHandle | number;

/**
 * The public listening socket the supervisor keeps for its whole life (`--balance socket`). It is
 * bound here but put in the listening state by the first app process that listens on it: a
 * supervisor that called `listen()` itself would accept connections in its own event loop. Once
 * listening, the socket stays listening as long as the supervisor holds it, so connections that
 * arrive while no app process accepts (a restart after kill -9) wait in the kernel's backlog.
 */
export class SharedSocket {
  readonly port: number;
  readonly #handle: ServerHandle;
  #server: net.Server | undefined;

  private constructor(handle: ServerHandle, port: number) {
    this.#handle = handle;
    this.port = port;
  }

  /**
   * Binds `host:port` (port 0: one the kernel picks, read back in {@link port}).
   *
   * @throws `BWK_ERR_SUPERVISOR_PORT_BUSY` when the address is taken.
   */
  static async open(host: string, port: number): Promise<SharedSocket> {
    const address = net.isIP(host) === 0 ? (await lookup(host)).address : host;
    // The same call Node's cluster module makes for its shared handles (bind without listen).
    const create = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle;
    const handle = create(address, port, net.isIP(address), undefined, 0);
    if (typeof handle === 'number')
      throw bulwarkError('BWK_ERR_SUPERVISOR_PORT_BUSY', {
        port,
        waitedMs: 0,
        holder: `another process (bind failed: errno ${handle})`,
      });
    const out: { port?: number } = {};
    handle.getsockname(out);
    return new SharedSocket(handle, out.port ?? port);
  }

  /** The supervisor's descriptor, passed to each app process as its fd {@link LISTEN_FD}. */
  get fd(): number {
    return this.#handle.fd;
  }

  /**
   * `--balance round-robin`: puts the socket in the listening state with `server` accepting in the
   * supervisor (which then deals the connections); the server owns the handle from then on.
   */
  listenIn(server: net.Server): void {
    this.#server = server;
    server.listen(this.#handle);
  }

  /** Closes the supervisor's copy (at stop, once no app process is left). */
  close(): void {
    if (this.#server === undefined) this.#handle.close();
    else this.#server.close();
  }
}

/**
 * Writes the listen preload into the (private) state directory and returns its path; the same file
 * is rewritten on every start, so an upgrade of Bulwark takes effect at the next supervisor start.
 */
export function writePreload(stateDir: string): string {
  const file = path.join(stateDir, 'listen-preload.cjs');
  writeFileSync(file, PRELOAD_SOURCE, { mode: 0o600 });
  return file;
}

/**
 * The environment that makes an app process listen on the shared socket: the descriptors, the
 * public port (`dealt`: it takes its connections from the supervisor over IPC), and the preload appended to the app's own `NODE_OPTIONS` (inherited by every Node
 * process it starts, so `npm start` works too).
 */
export function sharedSocketEnv(
  env: NodeJS.ProcessEnv,
  preload: string,
  port: number,
  dealt = false,
): Record<string, string> {
  const own = env['NODE_OPTIONS']?.trim() ?? '';
  const require = `--require ${JSON.stringify(preload)}`;
  return {
    BULWARK_LISTEN_FD: String(LISTEN_FD),
    BULWARK_LISTEN_CHANNEL_FD: String(CHANNEL_FD),
    BULWARK_LISTEN_PORT: String(port),
    ...(dealt ? { BULWARK_LISTEN_DEALT: '1' } : {}),
    NODE_OPTIONS: own === '' ? require : `${own} ${require}`,
  };
}

import type { Logger } from 'pino';
import type { SuperviseOptions } from './options.js';
import { freePort, waitForFreePort } from './ports.js';
import { Dealer } from './dealer.js';
import type { ClusterProxy } from './proxy.js';
import { SharedSocket, sharedSocketEnv, writePreload } from './shared-socket.js';

/**
 * Where clients connect: the shared listening socket (`--balance socket`; with `round-robin` the
 * supervisor accepts on it and deals the connections), the cluster proxy
 * (`--balance proxy` with instances), or nothing of the supervisor's (direct mode with
 * `--balance proxy`: the app binds the port itself). `port` is the public port once bound.
 */
export interface Front {
  socket?: { shared: SharedSocket; preload: string; dealer?: Dealer };
  proxy?: ClusterProxy;
  port?: number;
}

/**
 * Opens the front the options ask for; the supervisor keeps it until it stops.
 *
 * @throws `BWK_ERR_SUPERVISOR_PORT_BUSY` when the public port is taken.
 */
export async function openFront(options: SuperviseOptions, logger: Logger): Promise<Front> {
  if (options.balance === 'socket' || options.balance === 'round-robin') {
    const shared = await SharedSocket.open(options.host, options.port);
    const dealer =
      options.balance === 'round-robin' ? new Dealer(shared, { holdMs: options.holdMs, logger }) : undefined;
    return { socket: { shared, preload: writePreload(options.stateDir), dealer }, port: shared.port };
  }
  if (options.instances === undefined) return {};
  // Loaded only in cluster mode: direct mode never has the proxy in its process.
  const { ClusterProxy } = await import('./proxy.js');
  const proxy = new ClusterProxy({
    port: options.port,
    host: options.host,
    holdMs: options.holdMs,
    trustedProxies: options.trustedProxies,
    logger,
  });
  return { proxy, port: await proxy.listen() };
}

/** Closes the front at stop: the proxy, the connections the dealer holds, the shared socket. */
export async function closeFront(front: Front): Promise<void> {
  await front.proxy?.close();
  front.socket?.dealer?.close();
  front.socket?.shared.close();
}

/** Where the next app process listens, as the Instance options take it. */
export interface Placement {
  port: number;
  host: string;
  behindProxy: boolean;
  shared?: { fd: number; env: Record<string, string>; dealer?: Dealer };
}

/**
 * The next app process's port: the shared socket's (with the preload's environment), a free
 * internal port behind the proxy, or the public port, which must then be free (an orphan may hold it).
 */
export async function placeInstance(
  front: Front,
  options: SuperviseOptions,
  env: NodeJS.ProcessEnv,
): Promise<Placement> {
  const { socket, proxy } = front;
  if (socket !== undefined) {
    const port = socket.shared.port;
    const dealer = socket.dealer;
    const shared = {
      fd: socket.shared.fd,
      env: sharedSocketEnv(env, socket.preload, port, dealer !== undefined),
      dealer,
    };
    return { port, host: options.host, behindProxy: false, shared };
  }
  if (proxy !== undefined) return { port: await freePort('127.0.0.1'), host: '127.0.0.1', behindProxy: true };
  await waitForFreePort(options.host, options.port, Math.min(5_000, options.stopTimeoutMs));
  return { port: options.port, host: options.host, behindProxy: false };
}

import net from 'node:net';
import type { Logger } from 'pino';
import type { SharedSocket } from './shared-socket.js';

/** An app process new connections can be handed to (an {@link Instance} in `--balance round-robin`). */
export interface DealTarget {
  /**
   * Hands `socket` to the process over its IPC channel; `done` gets an error when it could not be
   * sent (the channel closed: the process is gone), and the socket is then still the caller's.
   */
  deal(socket: net.Socket, done: (error: Error | null) => void): void;
}

/** Options of {@link Dealer}. */
export interface DealerOptions {
  /** How long a connection waits for a process to take it while none is in the rotation (ms). */
  holdMs: number;
  /** Connections held at most while none is in the rotation (beyond: closed, as a full backlog). */
  maxHeld?: number;
  logger?: Logger;
}

/**
 * `--balance round-robin`: the supervisor accepts on the shared socket and deals each new
 * connection to the next app process in the rotation over its IPC channel, as Node's `cluster`
 * (and so PM2's cluster mode) does. Unlike the kernel's choice on a shared socket, which hands a
 * burst of connections to whichever process is in `accept()` first, every process gets its turn;
 * the cost is one IPC message per connection (not per request). While no process is in the
 * rotation (all restarting), connections are held, paused, for `holdMs`.
 */
export class Dealer {
  readonly #rotation: DealTarget[] = [];
  #next = 0;
  readonly #held: { socket: net.Socket; at: number }[] = [];
  /** Sockets dealt to a process whose send has not completed yet (queued behind an earlier one). */
  readonly #sending = new Map<DealTarget, Set<net.Socket>>();
  readonly #opts: DealerOptions;
  readonly #sweep: NodeJS.Timeout;

  constructor(shared: SharedSocket, opts: DealerOptions) {
    this.#opts = opts;
    const server = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) =>
      this.#deal(socket, 0),
    );
    // EMFILE and such: the listening socket stays; the connection is lost as in any server.
    server.on('error', (error) => opts.logger?.warn({ err: error }, 'cannot accept a connection'));
    shared.listenIn(server);
    this.#sweep = setInterval(() => this.#dropExpired(), 250).unref();
  }

  /** Puts `target` in the rotation (once); connections held meanwhile go to it at once. */
  add(target: DealTarget): void {
    if (this.#rotation.includes(target)) return;
    this.#rotation.push(target);
    for (const { socket } of this.#held.splice(0)) this.#deal(socket, 0);
  }

  /** Takes `target` out of the rotation: it gets no new connection (draining, stopping). */
  remove(target: DealTarget): void {
    const at = this.#rotation.indexOf(target);
    if (at !== -1) this.#rotation.splice(at, 1);
  }

  /**
   * `target` exited: out of the rotation, and the connections still queued for it go to the others.
   * Node passes one handle at a time over a channel and queues the rest until the process
   * acknowledges the first; when the process dies the queue is dropped without a callback, so those
   * connections, never sent, would hang. The one being sent when it died is closed by Node (its
   * client sees a reset, as for a request in flight in a killed process).
   */
  lost(target: DealTarget): void {
    this.remove(target);
    const queued = this.#sending.get(target);
    this.#sending.delete(target);
    for (const socket of queued ?? []) {
      // Still holding its handle: never handed over.
      if ((socket as unknown as { _handle: unknown })._handle != null) this.#deal(socket, 0);
    }
  }

  /** Closes the connections still held (the shared socket, closed after, stops the accepting). */
  close(): void {
    clearInterval(this.#sweep);
    for (const { socket } of this.#held.splice(0)) socket.destroy();
  }

  #deal(socket: net.Socket, tries: number): void {
    if (this.#rotation.length === 0 || tries >= this.#rotation.length) {
      if (this.#held.length >= (this.#opts.maxHeld ?? 1024)) socket.destroy();
      else this.#held.push({ socket, at: Date.now() });
      return;
    }
    this.#next %= this.#rotation.length;
    const target = this.#rotation[this.#next] as DealTarget;
    this.#next += 1;
    let sending = this.#sending.get(target);
    if (sending === undefined) this.#sending.set(target, (sending = new Set()));
    sending.add(socket);
    target.deal(socket, (error) => {
      sending.delete(socket);
      if (error === null) return;
      // Its channel closed (the process died): out of the rotation, the next one takes it.
      this.remove(target);
      if (!socket.destroyed) this.#deal(socket, tries + 1);
    });
  }

  #dropExpired(): void {
    const before = Date.now() - this.#opts.holdMs;
    while (this.#held.length > 0 && (this.#held[0]?.at ?? 0) < before) this.#held.shift()?.socket.destroy();
  }
}

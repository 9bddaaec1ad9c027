// One forwarded upgrade (WebSocket): connect attempts with retries, then bytes piped both ways.
import type http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { upgradeHead } from './proxy-headers.js';
import { finish, ignore, rawError } from './proxy-reply.js';
import type { OpenTunnel, Routable, Router, Target } from './proxy-router.js';

/** One proxied upgrade (WebSocket): the raw request head, then bytes piped both ways. */
export class Tunnel implements Routable, OpenTunnel {
  readonly tried: Target[] = [];
  holdDeadline = 0;
  cancelled = false;
  readonly #router: Router;
  readonly #req: http.IncomingMessage;
  readonly #client: Duplex;
  readonly #head: Buffer;
  readonly #requestHead: string;
  #target: Target | undefined;
  #upstream: net.Socket | undefined;
  #connected = false;

  constructor(router: Router, req: http.IncomingMessage, client: Duplex, head: Buffer) {
    this.#router = router;
    this.#req = req;
    this.#client = client;
    this.#head = head;
    this.#requestHead = upgradeHead(req, router.trusted);
  }

  start(): void {
    this.#client.on('error', ignore);
    this.#client.once('close', () => this.#clientClosed());
    this.#router.route(this);
  }

  send(target: Target): void {
    if (this.cancelled) return;
    this.tried.push(target);
    this.#target = target;
    this.#router.acquire(target);
    target.tunnels.add(this);
    this.#connected = false;
    const upstream = net.connect(target.port, target.host);
    this.#upstream = upstream;
    upstream.setNoDelay(true);
    upstream.once('connect', () => this.#onConnect(upstream));
    upstream.on('error', (error) => this.#onError(upstream, error));
    upstream.once('close', () => this.#onClose(upstream));
  }

  #onConnect(upstream: net.Socket): void {
    if (upstream !== this.#upstream) return;
    this.#connected = true;
    upstream.write(this.#requestHead);
    if (this.#head.length > 0) upstream.write(this.#head);
    upstream.pipe(this.#client);
    this.#client.pipe(upstream);
  }

  #onError(upstream: net.Socket, error: Error): void {
    if (upstream !== this.#upstream) return;
    const target = this.#target;
    this.#upstream = undefined;
    this.#release();
    if (this.cancelled) return;
    const router = this.#router;
    if (target !== undefined) router.upstreamFailed(target, error, !this.#connected);
    if (!this.#connected && this.tried.length < router.settings.maxAttempts && !router.closed) {
      router.retried += 1;
      router.route(this);
      return;
    }
    router.failed += 1;
    if (upstream.bytesRead > 0) {
      this.#client.destroy();
      return;
    }
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    rawError(this.#req, this.#client, 'BWK_ERR_SUPERVISOR_UPSTREAM', { detail: code }, error);
  }

  #onClose(upstream: net.Socket): void {
    if (upstream !== this.#upstream) return;
    this.#upstream = undefined;
    this.#release();
    // The upstream ended the tunnel: pipe() has ended the client; finish once that is flushed.
    finish(this.#client);
  }

  #clientClosed(): void {
    this.cancelled = true;
    this.#upstream?.destroy();
    this.#upstream = undefined;
    this.#release();
  }

  /** The upstream was failed or drained past its deadline. */
  kill(): void {
    this.cancelled = true;
    this.#upstream?.destroy();
    this.#upstream = undefined;
    this.#client.destroy();
    this.#release();
  }

  unavailable(): void {
    if (this.cancelled) return;
    this.#router.failed += 1;
    const holdMs = this.#router.settings.holdMs;
    rawError(this.#req, this.#client, 'BWK_ERR_SUPERVISOR_UNAVAILABLE', { holdMs });
  }

  #release(): void {
    const target = this.#target;
    if (target === undefined) return;
    this.#target = undefined;
    target.tunnels.delete(this);
    this.#router.release(target);
  }
}

// The cluster proxy's public face. Its parts: proxy-router.ts (rotation, balancing, cooldown, the hold
// queue), proxy-exchange.ts (one HTTP request across its attempts), proxy-tunnel.ts (upgrades),
// proxy-headers.ts (header rewriting), proxy-reply.ts (the proxy's own error answers), proxy-types.ts
// (its options and counters, which the parts share).
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { bulwarkError } from '../errors/index.js';
import { HttpExchange } from './proxy-exchange.js';
import { Router, type Settings } from './proxy-router.js';
import { Tunnel } from './proxy-tunnel.js';
import type { ProxyOptions, ProxyStats, Upstream, UpstreamStats } from './proxy-types.js';

export type { ProxyOptions, ProxyStats, Upstream, UpstreamStats } from './proxy-types.js';

/**
 * The supervisor's front in cluster mode: listens on the public port and forwards HTTP (and upgrades)
 * to the app instances, each on its own internal port, so a dead or replaced instance costs no request.
 *
 * - Balancing: least in-flight among the upstreams in rotation, round-robin on ties; one keep-alive
 *   agent per upstream.
 * - Retries (as nginx `proxy_next_upstream`): a failure before the response headers is retried on
 *   another upstream when the method is idempotent, or for any method when the connection was never
 *   established; in both cases only if the body was buffered (≤ `retryBodyLimitBytes`). A POST that
 *   may have reached an instance is never retried: it gets 502 `BWK_ERR_SUPERVISOR_UPSTREAM`. Nor is
 *   any request that reached an instance killed for hanging ({@link hung}): 502 `BWK_ERR_SUPERVISOR_HUNG`.
 * - A failure after the response headers cannot be hidden: the client connection is destroyed.
 * - With no upstream in rotation (or, for a retry, all of them failing fresh connections), requests wait
 *   up to `holdMs` for {@link add}, then get 503 `BWK_ERR_SUPERVISOR_UNAVAILABLE`. So with a single
 *   instance, an idempotent request in flight when it crashes is answered by its replacement.
 * - Never throws or crashes on a socket error; nothing is logged per request.
 */
export class ClusterProxy {
  readonly #router: Router;
  readonly #server: http.Server;
  readonly #port: number;
  readonly #host: string;
  #closing: Promise<void> | undefined;

  constructor(opts: ProxyOptions) {
    const settings: Settings = {
      holdMs: opts.holdMs ?? 10_000,
      maxHeld: opts.maxHeld ?? 10_000,
      retryBodyLimitBytes: opts.retryBodyLimitBytes ?? 1024 * 1024,
      maxAttempts: opts.maxAttempts ?? 3,
      cooldownMs: opts.cooldownMs ?? 1_000,
      upstreamIdleMs: opts.upstreamIdleMs ?? 4_000,
      keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? 72_000,
      trustedProxies: opts.trustedProxies ?? [],
    };
    const bad = Object.entries(settings).filter(([, v]) => typeof v === 'number' && !(v >= 0));
    if (bad.length > 0 || settings.maxAttempts < 1 || !Number.isInteger(opts.port)) {
      const summary =
        bad.length > 0 ? `${bad.map(([k]) => k).join(', ')} must be ≥ 0` : 'maxAttempts ≥ 1, port';
      throw bulwarkError('BWK_ERR_SUPERVISOR_OPTIONS', { summary });
    }
    this.#port = opts.port;
    this.#host = opts.host;
    const router = new Router(settings, opts.logger);
    this.#router = router;
    this.#server = http.createServer((req, res) => {
      router.requests += 1;
      new HttpExchange(router, req, res).start();
    });
    this.#server.keepAliveTimeout = settings.keepAliveTimeoutMs;
    this.#server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      router.requests += 1;
      new Tunnel(router, req, socket, head).start();
    });
    this.#server.on('error', (error) => {
      if (this.#server.listening) opts.logger?.error({ err: error }, 'cluster proxy server error');
    });
  }

  /** Starts listening; resolves with the bound port. Rejects with the socket error (`EADDRINUSE`). */
  listen(): Promise<number> {
    const server = this.#server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, this.#host, () => {
        server.off('error', reject);
        const address = server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : this.#port);
      });
    });
  }

  /**
   * Puts an upstream in rotation and sends it the held requests. Adding a known id puts it back in
   * rotation; if its address changed, the old one is treated as {@link failed} first.
   */
  add(upstream: Upstream): void {
    this.#router.add(upstream);
  }

  /** Takes an upstream out of rotation: no new requests; in-flight ones continue. Unknown ids are ignored. */
  remove(id: string): void {
    const target = this.#router.targets.get(id);
    if (target !== undefined) this.#router.takeOut(target);
  }

  /**
   * Takes an upstream out of rotation, waits until its in-flight requests and tunnels are done (or
   * `deadlineMs` passed), then destroys its sockets (what is still in flight then fails and is retried
   * by the usual rules) and forgets it. Resolves at once for an unknown id; never rejects.
   */
  async drain(id: string, deadlineMs: number): Promise<void> {
    const router = this.#router;
    const target = router.targets.get(id);
    if (target === undefined) return;
    router.takeOut(target);
    if (target.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadlineMs);
        target.idle.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    // Put back in rotation while draining: keep it.
    if (!target.inRotation) router.forget(target);
  }

  /**
   * The instance is being killed because its event loop is blocked: out of rotation at once, and
   * the requests that reached it are not retried on another instance when it dies (one of them may
   * be what blocked it, and would block each instance in turn): they get 502
   * `BWK_ERR_SUPERVISOR_HUNG`. Call {@link failed} once it is dead. Unknown ids are ignored.
   */
  hung(id: string): void {
    const target = this.#router.targets.get(id);
    if (target === undefined) return;
    target.hung = true;
    this.#router.takeOut(target);
  }

  /**
   * The instance died: out of rotation at once, its keep-alive sockets and tunnels destroyed, and
   * forgotten. Its in-flight requests fail and are retried by the usual rules. Unknown ids are ignored.
   */
  failed(id: string): void {
    const target = this.#router.targets.get(id);
    if (target === undefined) return;
    this.#router.takeOut(target);
    this.#router.forget(target);
  }

  /** Requests and tunnels in flight on one upstream (0 if unknown), or on all of them. */
  inFlight(id?: string): number {
    if (id === undefined) return this.#router.active;
    return this.#router.targets.get(id)?.inFlight ?? 0;
  }

  /** Counters and the upstreams known now. */
  stats(): ProxyStats {
    const router = this.#router;
    const upstreams: UpstreamStats[] = [];
    for (const t of router.targets.values()) {
      upstreams.push({ id: t.id, port: t.port, inRotation: t.inRotation, inFlight: t.inFlight });
    }
    return {
      requests: router.requests,
      retried: router.retried,
      failed: router.failed,
      held: router.held.length,
      upstreams,
    };
  }

  /**
   * Stops listening, answers held requests 503, destroys every upstream socket and client connection.
   * Abrupt for what is in flight: {@link drain} the upstreams first for a graceful stop. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      const server = this.#server;
      this.#router.shutdown();
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return this.#closing;
  }
}

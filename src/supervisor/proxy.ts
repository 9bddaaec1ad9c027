import { randomUUID } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { bulwarkError, type ErrorCode } from '../errors/index.js';
import type { ErrorBody } from '../http/error-handler.js';

/** One app instance: a process listening on its own internal port. */
export interface Upstream {
  /** Unique per instance process; a restarted process gets a new id (or the same id at a new port). */
  id: string;
  port: number;
  /** Default `127.0.0.1`. */
  host?: string;
}

/** Options of {@link ClusterProxy}. Times in milliseconds. */
export interface ProxyOptions {
  /** The public port (0 picks a free one: {@link ClusterProxy.listen} resolves with it). */
  port: number;
  host: string;
  /**
   * While no upstream is in rotation (or, for a retry, every one is cooling: see `cooldownMs`),
   * requests wait for one, this long in total at most, then get 503 (default 10 000).
   */
  holdMs?: number;
  /** At most this many requests wait at once; more get 503 at once (default 10 000). */
  maxHeld?: number;
  /**
   * Request bodies up to this size (bytes) are buffered so the request can be retried (default 1 MiB).
   * Larger ones are streamed to the first upstream and never retried.
   */
  retryBodyLimitBytes?: number;
  /** Attempts per request, on distinct upstreams where possible (default 3). */
  maxAttempts?: number;
  /**
   * After a refused connect, or a fresh connection reset before any response, an upstream is tried
   * last for this long (default 1 000): passive health, so requests stop paying for a dead instance
   * before the supervisor calls {@link ClusterProxy.failed}. A retry that finds every upstream cooling
   * is held until one is added or a cooldown ends.
   */
  cooldownMs?: number;
  /**
   * Idle keep-alive sockets to an upstream are closed after this long (default 4 000). Kept under the
   * app's keep-alive timeout (Node 5 s, Fastify 72 s) so a reused socket is rarely one the app is closing.
   */
  upstreamIdleMs?: number;
  /** Idle client keep-alive connections are closed after this long (default 72 000, as Fastify). */
  keepAliveTimeoutMs?: number;
  /**
   * Keep incoming `x-forwarded-proto` / `x-forwarded-host` (set by a trusted load balancer in front)
   * instead of overwriting them (default false). `x-forwarded-for` is always appended to.
   */
  trustForwarded?: boolean;
  /** Upstream failures are logged (warn; debug for a stopped instance), at most once a second per upstream. */
  logger?: Logger;
}

/** One upstream in {@link ProxyStats}. */
export interface UpstreamStats {
  id: string;
  port: number;
  inRotation: boolean;
  inFlight: number;
}

/** Counters since the proxy was created. */
export interface ProxyStats {
  /** HTTP requests and upgrades received. */
  requests: number;
  /** Attempts repeated on another upstream after a failure before the response headers. */
  retried: number;
  /** Requests answered 502/503 by the proxy, or cut off because the upstream died mid-response. */
  failed: number;
  /** Requests waiting for an upstream now. */
  held: number;
  /** Upstreams known (in rotation, removed or draining); failed and drained ones are forgotten. */
  upstreams: UpstreamStats[];
}

type Settings = Required<Omit<ProxyOptions, 'logger' | 'port' | 'host'>>;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const REQUEST_ID = /^[\w.:-]{1,128}$/;
const LOG_EVERY_MS = 1_000;
const COOLING_PENALTY = 1e9;
const TRIED_PENALTY = 1e12;

/**
 * The supervisor's front in cluster mode: listens on the public port and forwards HTTP (and upgrades)
 * to the app instances, each on its own internal port, so a dead or replaced instance costs no request.
 *
 * - Balancing: least in-flight among the upstreams in rotation, round-robin on ties; one keep-alive
 *   agent per upstream.
 * - Retries (as nginx `proxy_next_upstream`): a failure before the response headers is retried on
 *   another upstream when the method is idempotent, or for any method when the connection was never
 *   established; in both cases only if the body was buffered (≤ `retryBodyLimitBytes`). A POST that
 *   may have reached an instance is never retried: it gets 502 `BWK_ERR_SUPERVISOR_UPSTREAM`.
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
      trustForwarded: opts.trustForwarded ?? false,
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

/** One upstream's state; its agent holds the keep-alive sockets. */
class Target {
  readonly id: string;
  readonly port: number;
  readonly host: string;
  readonly agent: http.Agent;
  readonly tunnels = new Set<Tunnel>();
  inRotation = false;
  inFlight = 0;
  /** Tried last until then (ms since epoch), after a failed connect. */
  coolUntil = 0;
  /** Failed or drained: sockets destroyed, no longer in the router. */
  gone = false;
  lastLogAt = 0;
  suppressed = 0;
  /** Called when in-flight reaches 0 (drain). */
  idle: (() => void)[] = [];

  constructor(upstream: Upstream, idleMs: number) {
    this.id = upstream.id;
    this.port = upstream.port;
    this.host = upstream.host ?? '127.0.0.1';
    // `timeout` closes idle pooled sockets (Node also honours a shorter `Keep-Alive: timeout` hint);
    // on an active request it only emits 'timeout', which is not listened to.
    this.agent = new http.Agent({ keepAlive: true, timeout: idleMs, scheduling: 'lifo' });
  }

  wake(): void {
    const waiters = this.idle;
    this.idle = [];
    for (const fn of waiters) fn();
  }
}

/** A request or upgrade waiting to be sent to an upstream (or held until one is in rotation). */
interface Routable {
  /** Upstreams tried so far, one per attempt. */
  readonly tried: Target[];
  /** Set when first held (ms since epoch): past it, 503. Kept across holds, so a request waits `holdMs` at most. */
  holdDeadline: number;
  /** The client went away: drop it. */
  cancelled: boolean;
  send(target: Target): void;
  /** Answers 503: no upstream came in time. */
  unavailable(): void;
}

/** Rotation, balancing, the hold queue and counters, shared by the exchanges. */
class Router {
  readonly settings: Settings;
  readonly logger: Logger | undefined;
  readonly targets = new Map<string, Target>();
  rotation: Target[] = [];
  held: Routable[] = [];
  requests = 0;
  retried = 0;
  failed = 0;
  /** In flight on all upstreams, including forgotten ones. */
  active = 0;
  closed = false;
  #next = 0;
  #expiryTimer: NodeJS.Timeout | undefined;
  #expiryDue = Infinity;
  #coolTimer: NodeJS.Timeout | undefined;

  constructor(settings: Settings, logger: Logger | undefined) {
    this.settings = settings;
    this.logger = logger;
  }

  route(r: Routable): void {
    if (this.closed) return r.unavailable();
    const target = this.#pick(r.tried);
    if (target === undefined) return this.#hold(r);
    // A retry, and every upstream failed a fresh connection just now (all dead, or restarting before the
    // supervisor noticed): wait for add() or the end of the cooldown instead of burning the attempts.
    const coolMs = r.tried.length > 0 ? target.coolUntil - Date.now() : 0;
    if (coolMs > 0) {
      this.#wakeAfterCooldown(coolMs);
      return this.#hold(r);
    }
    r.send(target);
  }

  /** Least in-flight, scanning from a rotating start (round-robin on ties); cooling and tried ones last. */
  #pick(tried: readonly Target[]): Target | undefined {
    const rotation = this.rotation;
    const n = rotation.length;
    if (n === 0) return undefined;
    if (this.#next >= n) this.#next = 0;
    const start = this.#next++;
    const now = Date.now();
    let best: Target | undefined;
    let bestScore = Infinity;
    for (let i = 0; i < n; i++) {
      const t = rotation[(start + i) % n] as Target;
      let score = t.inFlight;
      if (t.coolUntil > now) score += COOLING_PENALTY;
      if (tried.length > 0 && tried.includes(t)) score += TRIED_PENALTY;
      if (score < bestScore) {
        best = t;
        bestScore = score;
      }
    }
    return best;
  }

  #hold(r: Routable): void {
    const now = Date.now();
    if (r.holdDeadline === 0) r.holdDeadline = now + this.settings.holdMs;
    if (r.holdDeadline <= now || this.held.length >= this.settings.maxHeld) return r.unavailable();
    this.held.push(r);
    this.#armExpiry(r.holdDeadline, now);
  }

  /** One timer for the whole queue, at the earliest deadline (25 ms resolution bounds the rescans). */
  #armExpiry(due: number, now: number): void {
    if (this.#expiryTimer !== undefined && this.#expiryDue <= due) return;
    clearTimeout(this.#expiryTimer);
    this.#expiryDue = due;
    this.#expiryTimer = setTimeout(this.#expireHeld, Math.max(25, due - now));
    this.#expiryTimer.unref();
  }

  readonly #expireHeld = (): void => {
    this.#expiryTimer = undefined;
    const now = Date.now();
    const kept: Routable[] = [];
    let next = Infinity;
    for (const r of this.held) {
      if (r.cancelled) continue;
      if (r.holdDeadline <= now) r.unavailable();
      else {
        kept.push(r);
        next = Math.min(next, r.holdDeadline);
      }
    }
    this.held = kept;
    if (next !== Infinity) this.#armExpiry(next, now);
  };

  #wakeAfterCooldown(ms: number): void {
    if (this.#coolTimer !== undefined) return;
    this.#coolTimer = setTimeout(() => {
      this.#coolTimer = undefined;
      this.#flushHeld();
    }, ms);
    this.#coolTimer.unref();
  }

  #flushHeld(): void {
    if (this.held.length === 0) return;
    const held = this.held;
    this.held = [];
    for (const r of held) if (!r.cancelled) this.route(r);
  }

  add(upstream: Upstream): void {
    if (this.closed) return;
    let target = this.targets.get(upstream.id);
    if (
      target !== undefined &&
      (target.port !== upstream.port || target.host !== (upstream.host ?? '127.0.0.1'))
    ) {
      this.takeOut(target);
      this.forget(target);
      target = undefined;
    }
    if (target === undefined) {
      target = new Target(upstream, this.settings.upstreamIdleMs);
      this.targets.set(target.id, target);
    }
    target.coolUntil = 0;
    if (!target.inRotation) {
      target.inRotation = true;
      this.rotation.push(target);
    }
    this.#flushHeld();
  }

  takeOut(target: Target): void {
    if (!target.inRotation) return;
    target.inRotation = false;
    this.rotation = this.rotation.filter((t) => t !== target);
  }

  /** Destroys an upstream's sockets and tunnels and drops it; what is in flight on it then fails. */
  forget(target: Target): void {
    if (this.targets.get(target.id) === target) this.targets.delete(target.id);
    target.gone = true;
    target.agent.destroy();
    for (const tunnel of target.tunnels) tunnel.kill();
    target.wake();
  }

  acquire(target: Target): void {
    target.inFlight += 1;
    this.active += 1;
  }

  release(target: Target): void {
    target.inFlight -= 1;
    this.active -= 1;
    if (target.inFlight === 0 && target.idle.length > 0) target.wake();
  }

  /**
   * Notes a transport failure and logs it (rate-limited). `cool`: the failure says the process is gone
   * or going (a refused connect, or a fresh connection reset before any response, as when the kernel
   * accepted it in the backlog of a process being killed), not a keep-alive race.
   */
  upstreamFailed(target: Target, error: Error, cool: boolean): void {
    const now = Date.now();
    if (cool && !target.gone) target.coolUntil = now + this.settings.cooldownMs;
    const logger = this.logger;
    if (logger === undefined) return;
    if (now - target.lastLogAt < LOG_EVERY_MS) {
      target.suppressed += 1;
      return;
    }
    const fields = {
      upstream: target.id,
      port: target.port,
      code: (error as NodeJS.ErrnoException).code ?? error.message,
      suppressedSinceLast: target.suppressed,
    };
    target.lastLogAt = now;
    target.suppressed = 0;
    if (target.gone) logger.debug(fields, 'request to a stopped app instance failed');
    else logger.warn(fields, 'request to an app instance failed');
  }

  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.#expiryTimer);
    clearTimeout(this.#coolTimer);
    const held = this.held;
    this.held = [];
    for (const r of held) if (!r.cancelled) r.unavailable();
    for (const target of [...this.targets.values()]) {
      this.takeOut(target);
      this.forget(target);
    }
  }
}

// Per-request event handlers are module functions that find their exchange through a symbol on the
// emitter: no closures per request, and a late event from a previous attempt is recognised.
const EXCHANGE = Symbol('bulwark.proxy.exchange');
type Tagged = { [EXCHANGE]?: HttpExchange | undefined };

function tag(emitter: object, exchange: HttpExchange | undefined): void {
  (emitter as Tagged)[EXCHANGE] = exchange;
}

function exchangeOf(emitter: object): HttpExchange | undefined {
  return (emitter as Tagged)[EXCHANGE];
}

function ignore(): void {}

function onClientClose(this: http.ServerResponse): void {
  exchangeOf(this)?.clientClosed();
}

function onBodyData(this: http.IncomingMessage, chunk: Buffer): void {
  exchangeOf(this)?.bodyData(chunk);
}

function onBodyEnd(this: http.IncomingMessage): void {
  exchangeOf(this)?.bodyEnd();
}

function onUpstreamSocket(this: http.ClientRequest, socket: net.Socket): void {
  const exchange = exchangeOf(this);
  if (exchange === undefined) return;
  if (this.reusedSocket || !socket.connecting) return exchange.socketReady(socket);
  tag(socket, exchange);
  socket.once('connect', onSocketConnect);
}

function onSocketConnect(this: net.Socket): void {
  const exchange = exchangeOf(this);
  // The socket goes back to the pool: it must not keep the exchange alive.
  tag(this, undefined);
  exchange?.socketReady(this);
}

function onUpstreamResponse(this: http.ClientRequest, upRes: http.IncomingMessage): void {
  const exchange = exchangeOf(this);
  if (exchange === undefined) upRes.resume();
  else exchange.response(this, upRes);
}

function onUpstreamError(this: http.ClientRequest, error: Error): void {
  exchangeOf(this)?.upstreamError(this, error);
}

function onUpstreamResponseClose(this: http.IncomingMessage): void {
  exchangeOf(this)?.responseClosed(this);
}

/** One proxied HTTP request, across its attempts. */
class HttpExchange implements Routable {
  readonly tried: Target[] = [];
  holdDeadline = 0;
  cancelled = false;
  readonly #router: Router;
  readonly #req: http.IncomingMessage;
  readonly #res: http.ServerResponse;
  readonly #head: RequestHead;
  #chunks: Buffer[] | undefined;
  #size = 0;
  #streaming = false;
  #target: Target | undefined;
  #upReq: http.ClientRequest | undefined;
  #upRes: http.IncomingMessage | undefined;
  #connected = false;
  #cutOff = false;

  constructor(router: Router, req: http.IncomingMessage, res: http.ServerResponse) {
    this.#router = router;
    this.#req = req;
    this.#res = res;
    this.#head = forwardHeaders(req, false, router.settings.trustForwarded);
  }

  start(): void {
    const res = this.#res;
    const head = this.#head;
    tag(res, this);
    res.on('close', onClientClose);
    res.on('error', ignore);
    if (head.contentLength <= 0 && !head.chunked) return this.#router.route(this);
    if (head.contentLength > this.#router.settings.retryBodyLimitBytes) {
      this.#streaming = true;
      return this.#router.route(this);
    }
    this.#chunks = [];
    tag(this.#req, this);
    this.#req.on('data', onBodyData);
    this.#req.on('end', onBodyEnd);
  }

  bodyData(chunk: Buffer): void {
    if (this.cancelled || this.#streaming) return;
    (this.#chunks as Buffer[]).push(chunk);
    this.#size += chunk.length;
    if (this.#size <= this.#router.settings.retryBodyLimitBytes) return;
    // Only a chunked body can get here (a larger Content-Length streams from the start).
    const req = this.#req;
    req.off('data', onBodyData);
    req.off('end', onBodyEnd);
    req.pause();
    this.#streaming = true;
    this.#head.headers.push('transfer-encoding', 'chunked');
    this.#router.route(this);
  }

  bodyEnd(): void {
    if (this.cancelled || this.#streaming) return;
    if (this.#head.chunked) this.#head.headers.push('content-length', String(this.#size));
    this.#router.route(this);
  }

  send(target: Target): void {
    if (this.cancelled) return;
    const req = this.#req;
    this.tried.push(target);
    this.#target = target;
    this.#router.acquire(target);
    this.#connected = false;
    const upReq = http.request({
      host: target.host,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: this.#head.headers,
      agent: target.agent,
    });
    this.#upReq = upReq;
    tag(upReq, this);
    upReq.on('error', onUpstreamError);
    upReq.once('socket', onUpstreamSocket);
    upReq.once('response', onUpstreamResponse);
    const chunks = this.#chunks;
    if (chunks !== undefined) for (const chunk of chunks) upReq.write(chunk);
    if (this.#streaming) {
      this.#chunks = undefined;
      req.pipe(upReq);
    } else upReq.end();
  }

  /** The current attempt's socket is connected (a reused one, or a new one that just connected). */
  socketReady(socket: net.Socket): void {
    if (this.#upReq?.socket === socket) this.#connected = true;
  }

  response(upReq: http.ClientRequest, upRes: http.IncomingMessage): void {
    if (upReq !== this.#upReq || this.cancelled) {
      upRes.resume();
      return;
    }
    this.#upRes = upRes;
    tag(upRes, this);
    upRes.on('close', onUpstreamResponseClose);
    try {
      this.#res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, responseHeaders(upRes.rawHeaders));
    } catch {
      // A header Node refuses to send: nothing sensible can be answered any more.
      upReq.destroy();
      this.#cut();
      return;
    }
    upRes.pipe(this.#res);
  }

  responseClosed(upRes: http.IncomingMessage): void {
    if (upRes !== this.#upRes) return;
    this.#release();
    if (!upRes.complete) this.#cut();
  }

  upstreamError(upReq: http.ClientRequest, error: Error): void {
    if (upReq !== this.#upReq) return;
    const target = this.#target;
    this.#release();
    if (this.cancelled) return;
    if (this.#upRes !== undefined) return this.#cut();
    const router = this.#router;
    const fresh = !this.#connected || !upReq.reusedSocket;
    if (target !== undefined) router.upstreamFailed(target, error, fresh);
    const retryable =
      !this.#streaming &&
      (IDEMPOTENT.has(this.#req.method ?? '') || !this.#connected) &&
      this.tried.length < router.settings.maxAttempts &&
      !router.closed;
    this.#upReq = undefined;
    if (retryable) {
      router.retried += 1;
      router.route(this);
      return;
    }
    router.failed += 1;
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    sendError(this.#req, this.#res, 'BWK_ERR_SUPERVISOR_UPSTREAM', { detail: code }, error);
  }

  unavailable(): void {
    if (this.cancelled) return;
    this.#router.failed += 1;
    const holdMs = this.#router.settings.holdMs;
    sendError(this.#req, this.#res, 'BWK_ERR_SUPERVISOR_UNAVAILABLE', { holdMs });
  }

  clientClosed(): void {
    if (this.#res.writableFinished) return;
    // The client went away first: stop the upstream request, whatever state it is in.
    this.cancelled = true;
    if (this.#target !== undefined) this.#upReq?.destroy();
    this.#release();
    this.#chunks = undefined;
  }

  /** The upstream failed after the response headers: the client connection cannot be saved. */
  #cut(): void {
    if (this.#cutOff || this.cancelled) return;
    this.#cutOff = true;
    this.#router.failed += 1;
    this.#res.destroy();
  }

  #release(): void {
    const target = this.#target;
    if (target === undefined) return;
    this.#target = undefined;
    this.#router.release(target);
  }
}

/** One proxied upgrade (WebSocket): the raw request head, then bytes piped both ways. */
class Tunnel implements Routable {
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
    this.#requestHead = upgradeHead(req, router.settings.trustForwarded);
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
    this.#rawError('BWK_ERR_SUPERVISOR_UPSTREAM', { detail: code }, error);
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
    this.#rawError('BWK_ERR_SUPERVISOR_UNAVAILABLE', { holdMs: this.#router.settings.holdMs });
  }

  #rawError(code: ErrorCode, params: Record<string, unknown>, cause?: unknown): void {
    const { status, body, requestId } = errorResponse(this.#req, code, params, cause);
    this.#client.write(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`,
    );
    finish(this.#client);
  }

  #release(): void {
    const target = this.#target;
    if (target === undefined) return;
    this.#target = undefined;
    target.tunnels.delete(this);
    this.#router.release(target);
  }
}

/** Ends a client socket and destroys it once flushed: upgraded sockets are half-open capable. */
function finish(client: Duplex): void {
  if (client instanceof net.Socket) client.destroySoon();
  else client.end();
}

interface RequestHead {
  /** Flat `[name, value, …]`, as `rawHeaders`: case and order kept, no header object built. */
  headers: string[];
  /** -1 when absent. */
  contentLength: number;
  /** A `Transfer-Encoding` body (stripped: the length is set once the body is buffered). */
  chunked: boolean;
}

/**
 * Request headers for the upstream: hop-by-hop ones dropped (except `connection`/`upgrade` on an
 * upgrade), `expect` dropped (Node already answered 100-continue), `x-forwarded-for` appended to,
 * `x-forwarded-proto`/`-host` set.
 */
function forwardHeaders(req: http.IncomingMessage, upgrade: boolean, trustForwarded: boolean): RequestHead {
  const raw = req.rawHeaders;
  const headers: string[] = [];
  let forwardedFor = '';
  let proto: string | undefined;
  let forwardedHost: string | undefined;
  let host: string | undefined;
  let contentLength = -1;
  let chunked = false;
  let listed: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    switch (lower) {
      case 'connection':
        if (upgrade) headers.push(name, value);
        else listed = connectionTokens(value, listed);
        break;
      case 'upgrade':
        if (upgrade) headers.push(name, value);
        break;
      case 'keep-alive':
      case 'te':
      case 'trailer':
      case 'expect':
        break;
      case 'transfer-encoding':
        chunked = true;
        break;
      case 'content-length':
        contentLength = Number(value);
        headers.push(name, value);
        break;
      case 'host':
        host = value;
        headers.push(name, value);
        break;
      case 'x-forwarded-for':
        forwardedFor = forwardedFor === '' ? value : `${forwardedFor}, ${value}`;
        break;
      case 'x-forwarded-proto':
        if (trustForwarded) proto = value;
        break;
      case 'x-forwarded-host':
        if (trustForwarded) forwardedHost = value;
        break;
      default:
        if (!lower.startsWith('proxy-')) headers.push(name, value);
    }
  }
  const remote = req.socket.remoteAddress;
  if (remote !== undefined) forwardedFor = forwardedFor === '' ? remote : `${forwardedFor}, ${remote}`;
  if (forwardedFor !== '') headers.push('x-forwarded-for', forwardedFor);
  headers.push('x-forwarded-proto', proto ?? 'http');
  forwardedHost ??= host;
  if (forwardedHost !== undefined) headers.push('x-forwarded-host', forwardedHost);
  return { headers: listed === undefined ? headers : without(headers, listed), contentLength, chunked };
}

/** Response headers for the client: hop-by-hop ones dropped; Node sets its own framing. */
function responseHeaders(raw: string[]): string[] {
  const headers: string[] = [];
  let listed: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    switch (lower) {
      case 'connection':
        listed = connectionTokens(raw[i + 1] as string, listed);
        break;
      case 'keep-alive':
      case 'te':
      case 'trailer':
      case 'transfer-encoding':
      case 'upgrade':
        break;
      default:
        if (!lower.startsWith('proxy-')) headers.push(name, raw[i + 1] as string);
    }
  }
  return listed === undefined ? headers : without(headers, listed);
}

/** Header names a `Connection` value declares hop-by-hop, beyond the usual ones. */
function connectionTokens(value: string, listed: string[] | undefined): string[] | undefined {
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || name === 'keep-alive' || name === 'close' || name === 'upgrade') continue;
    (listed ??= []).push(name);
  }
  return listed;
}

function without(headers: string[], names: string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (!names.includes(name.toLowerCase())) kept.push(name, headers[i + 1] as string);
  }
  return kept;
}

function upgradeHead(req: http.IncomingMessage, trustForwarded: boolean): string {
  const { headers } = forwardHeaders(req, true, trustForwarded);
  let text = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2)
    text += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`;
  return `${text}\r\n`;
}

function errorResponse(
  req: http.IncomingMessage,
  code: ErrorCode,
  params: Record<string, unknown>,
  cause?: unknown,
): { status: number; body: string; requestId: string } {
  const error = bulwarkError(code, params, cause === undefined ? {} : { cause });
  const given = req.headers['x-request-id'];
  const requestId = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
  const body: ErrorBody = { error: { code, message: error.message, requestId } };
  return { status: error.statusCode, body: JSON.stringify(body), requestId };
}

function sendError(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  code: ErrorCode,
  params: Record<string, unknown>,
  cause?: unknown,
): void {
  if (res.destroyed) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const { status, body, requestId } = errorResponse(req, code, params, cause);
  const headers = [
    'content-type',
    'application/json; charset=utf-8',
    'content-length',
    String(Buffer.byteLength(body)),
    'x-request-id',
    requestId,
  ];
  if (code === 'BWK_ERR_SUPERVISOR_UNAVAILABLE') headers.push('retry-after', '1');
  // An unread request body would otherwise be parsed as the next request.
  if (!req.complete) headers.push('connection', 'close');
  res.writeHead(status, headers);
  res.end(body);
}

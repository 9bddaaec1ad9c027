// One forwarded HTTP request: its body buffered (or streamed), its attempts and retries, the response
// piped back. Event handlers are module functions, so an exchange costs no closures.
import http from 'node:http';
import type net from 'node:net';
import { forwardHeaders, type RequestHead, responseHeaders } from './proxy-headers.js';
import { ignore, sendError } from './proxy-reply.js';
import type { Routable, Router, Target } from './proxy-router.js';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

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
export class HttpExchange implements Routable {
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
    this.#head = forwardHeaders(req, false, router.trusted);
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
    // Reached an instance killed for hanging: replaying it could hang the next one the same way.
    const reachedHung = target?.hung === true && this.#connected;
    const retryable =
      !this.#streaming &&
      !reachedHung &&
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
    if (reachedHung) sendError(this.#req, this.#res, 'BWK_ERR_SUPERVISOR_HUNG', {}, error);
    else sendError(this.#req, this.#res, 'BWK_ERR_SUPERVISOR_UPSTREAM', { detail: code }, error);
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

// Which upstream gets a request: the rotation, least-in-flight balancing, passive health (cooldown),
// the hold queue while none is ready, and the counters behind ClusterProxy.stats().
import http from 'node:http';
import type { Logger } from 'pino';
import { trustedPeers, type TrustedPeer } from './proxy-headers.js';
import type { ProxyOptions, Upstream } from './proxy-types.js';

/** {@link ProxyOptions} with the defaults applied, less the listening address and the logger. */
export type Settings = Required<Omit<ProxyOptions, 'logger' | 'port' | 'host'>>;

/** What {@link Router.forget} must end on a failed upstream besides its sockets: an upgrade tunnel. */
export interface OpenTunnel {
  kill(): void;
}

const LOG_EVERY_MS = 1_000;
const COOLING_PENALTY = 1e9;
const TRIED_PENALTY = 1e12;

/** One upstream's state; its agent holds the keep-alive sockets. */
export class Target {
  readonly id: string;
  readonly port: number;
  readonly host: string;
  readonly agent: http.Agent;
  readonly tunnels = new Set<OpenTunnel>();
  inRotation = false;
  inFlight = 0;
  /** Tried last until then (ms since epoch), after a failed connect. */
  coolUntil = 0;
  /** Failed or drained: sockets destroyed, no longer in the router. */
  gone = false;
  /**
   * Killed for hanging: a request that reached it is never retried elsewhere (it may be the one
   * that blocked its event loop, and would block the next instance too).
   */
  hung = false;
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
export interface Routable {
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
export class Router {
  readonly settings: Settings;
  readonly logger: Logger | undefined;
  /** Peers whose forwarding headers are believed (`settings.trustedProxies`). */
  readonly trusted: TrustedPeer;
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
    this.trusted = trustedPeers(settings.trustedProxies);
  }

  /** Sends `r` to the best upstream now, or holds it; answers it 503 once closed. */
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

  /** Puts an upstream in rotation (replacing a known id at a new address) and sends it the held requests. */
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

  /** Out of rotation: no new requests; in-flight ones continue. */
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

  /** One more request or tunnel in flight on `target`; each is paired with one {@link release}. */
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

  /** Answers held requests 503 and forgets every upstream. Idempotent. */
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

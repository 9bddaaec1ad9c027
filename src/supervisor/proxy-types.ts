// The cluster proxy's options and counters, apart from proxy.ts so that its parts (proxy-router.ts)
// can use them without importing the proxy that imports them.
import type { Logger } from 'pino';

/** One app instance: a process listening on its own internal port. */
export interface Upstream {
  /** Unique per instance process; a restarted process gets a new id (or the same id at a new port). */
  id: string;
  port: number;
  /** Default `127.0.0.1`. */
  host?: string;
}

/** Options of `ClusterProxy`. Times in milliseconds. */
export interface ProxyOptions {
  /** The public port (0 picks a free one: `ClusterProxy.listen` resolves with it). */
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
   * before the supervisor calls `ClusterProxy.failed`. A retry that finds every upstream cooling
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
   * The proxies in front (a load balancer) whose forwarding headers are believed: IP addresses and
   * CIDR ranges (default none). From any other peer, `x-forwarded-for`/`-proto`/`-host`,
   * `forwarded` and `x-real-ip` are replaced or dropped, so a client cannot name its own address.
   * The upstream always gets `x-forwarded-for` with one address, the client's.
   */
  trustedProxies?: readonly string[];
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

// The load-shedding hook: every request of a protected route asks the shedder for a slot before
// anything else runs (it is the first onRequest hook), and gives it back when its response closes.
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { ServerResponse } from 'node:http';
import { catalogue } from '../errors/catalogue.js';
import { bulwarkError } from '../errors/index.js';
import {
  PRIORITIES,
  type Priority,
  type Protection,
  type ProtectionOptions,
  type Shedder,
  type ShedReason,
} from '../protection/index.js';
import { PROBE_ROUTES, quietAnswers } from './request-observer.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route's load-shedding class (default `default`; `critical` under `/admin`), or `false`
     * to never shed it (as `/health*` and `/metrics`). See docs/protection.md.
     */
    priority?: Priority | false;
    /**
     * A stream (Server-Sent Events, a long poll): admitted or refused like any request, but it
     * holds no slot while open and its duration is no latency sample.
     */
    stream?: boolean;
  }
}

const OVERLOADED = catalogue.BWK_ERR_PROTECTION_OVERLOADED;
const CLIENT_SHARE = catalogue.BWK_ERR_PROTECTION_CLIENT_SHARE;
const RANKS = new Map<string, number>(PRIORITIES.map((name, rank) => [name, rank]));
/** A route that is never shed. */
const EXEMPT = -1;
const MAX_DEADLINE_MS = 86_400_000;

/** The route's class as registered, checked once. */
interface RouteClass {
  rank: number;
  stream: boolean;
}

// Set on the raw response of an admitted request, read when it closes (no closure per request).
const kRank = Symbol('bulwark.protection.rank');
const kAdmittedAt = Symbol('bulwark.protection.admittedAt');
const kShedder = Symbol('bulwark.protection.shedder');
const kClient = Symbol('bulwark.protection.client');
type TrackedResponse = ServerResponse & {
  [kRank]: number;
  [kAdmittedAt]: number;
  [kShedder]: Shedder;
  [kClient]: string | undefined;
};

/** An admitted request's response closed: its slot is free; answered below 500, its latency is a sample. */
function onResponseClose(this: TrackedResponse): void {
  const shedder = this[kShedder];
  const answered = this.writableFinished && this.statusCode < 500;
  shedder.release(this[kRank], answered ? shedder.now() - this[kAdmittedAt] : undefined, this[kClient]);
}

/**
 * Registers the shedding hook on `app` (before every other onRequest hook but the core's) and
 * engages `protection`'s sampling. Routes registered after this are protected, each by its class.
 */
export function registerProtection(
  app: FastifyInstance,
  protection: Protection,
  options: ProtectionOptions,
): void {
  const shedder = protection.shedder;
  const header = options.priorityHeader?.toLowerCase();
  const deadlineHeader =
    options.deadlineHeader === false
      ? undefined
      : (options.deadlineHeader ?? 'x-request-timeout-ms').toLowerCase();
  const classify = options.classify;
  const classes = new WeakMap<object, RouteClass>();
  app.addHook('onRoute', (route) => {
    // Checked at registration, so a misspelt class fails the start, not the first request.
    const priority: unknown = route.config?.priority;
    if (
      priority !== undefined &&
      priority !== false &&
      (typeof priority !== 'string' || !RANKS.has(priority))
    )
      throw bulwarkError('BWK_ERR_PROTECTION_OPTIONS', {
        field: `config.priority of ${route.method.toString()} ${route.url}`,
        problem: `${JSON.stringify(priority)} is not one of ${PRIORITIES.join(', ')} or false`,
      });
  });
  const classOf = (request: FastifyRequest): RouteClass => {
    const { config, url } = request.routeOptions;
    let known = classes.get(config);
    if (known === undefined) {
      const priority = config.priority;
      const exempt = priority === false || url === undefined || PROBE_ROUTES.has(url);
      const name =
        priority === false || priority === undefined
          ? url?.startsWith('/admin')
            ? 'critical'
            : 'default'
          : priority;
      known = { rank: exempt ? EXEMPT : (RANKS.get(name) ?? 1), stream: config.stream === true };
      classes.set(config, known);
    }
    return known;
  };

  // Per-client fairness only when asked for (a client key per request costs a little).
  const clientKey =
    options.clientShare === undefined
      ? undefined
      : (options.clientKey ?? ((request: FastifyRequest) => request.ip));
  const track = (reply: FastifyReply, rank: number, stream: boolean, client: string | undefined): void => {
    if (stream) {
      shedder.release(rank, undefined, client);
      return;
    }
    const raw = reply.raw as TrackedResponse;
    raw[kRank] = rank;
    raw[kAdmittedAt] = shedder.now();
    raw[kShedder] = shedder;
    raw[kClient] = client;
    raw.on('close', onResponseClose);
  };

  const refuse = (request: FastifyRequest, reply: FastifyReply, rank: number, reason: ShedReason): void => {
    quietAnswers.add(request);
    const retryAfter = shedder.retryAfterSeconds();
    const perClient = reason === 'client-share';
    // The coded body without an Error (no stack to capture): a shed request must cost little.
    const message = (perClient ? CLIENT_SHARE : OVERLOADED).message
      .replace('{priority}', PRIORITIES[rank] ?? 'default')
      .replace('{reason}', reason)
      .replace('{retryAfter}', String(retryAfter));
    const code = perClient ? 'BWK_ERR_PROTECTION_CLIENT_SHARE' : 'BWK_ERR_PROTECTION_OVERLOADED';
    void reply
      .code(perClient ? 429 : 503)
      .header('retry-after', String(retryAfter))
      .header('cache-control', 'no-store')
      .type('application/json; charset=utf-8')
      .send(JSON.stringify({ error: { code, message, requestId: request.id } }));
  };

  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    if (!shedder.enabled) return done();
    const route = classOf(request);
    if (route.rank === EXEMPT) return done();
    const rank = rankOf(request, route.rank, classify, header);
    const client = clientKey?.(request);
    const verdict = shedder.admit(rank, client);
    if (verdict === 'admitted') {
      track(reply, rank, route.stream, client);
      return done();
    }
    if (verdict !== 'queued') return refuse(request, reply, rank, verdict);
    const raw = request.raw;
    shedder.enqueue({
      rank,
      client,
      queuedAt: shedder.now(),
      deadlineAt: deadlineOf(request, deadlineHeader, shedder.now()),
      gone: () => raw.destroyed || raw.socket?.destroyed !== false,
      resume: (reason) => {
        if (reason !== undefined) return refuse(request, reply, rank, reason);
        track(reply, rank, route.stream, client);
        done();
      },
    });
  });
  protection.engage();
}

/** The request's class: the app's function, else the trusted header, else the route's. */
function rankOf(
  request: FastifyRequest,
  routeRank: number,
  classify: ProtectionOptions['classify'],
  header: string | undefined,
): number {
  if (classify !== undefined) {
    const chosen = classify(request);
    if (chosen !== undefined) return RANKS.get(chosen) ?? routeRank;
  }
  if (header !== undefined) {
    const given = request.headers[header];
    if (typeof given === 'string') return RANKS.get(given.trim().toLowerCase()) ?? routeRank;
  }
  return routeRank;
}

/** When the client stops waiting, from the deadline header (+Infinity without a valid one). */
function deadlineOf(request: FastifyRequest, header: string | undefined, now: number): number {
  if (header === undefined) return Number.POSITIVE_INFINITY;
  const given = request.headers[header];
  if (typeof given !== 'string' || !/^\d{1,8}$/.test(given)) return Number.POSITIVE_INFINITY;
  return now + Math.min(Number(given), MAX_DEADLINE_MS);
}

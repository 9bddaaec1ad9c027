// The live event stream's hub: the open Server-Sent Events connections of one process, what each is
// owed (coalesced per topic), the shared pollers that find changes, and a short ring of recent changes
// for reconnecting clients. The route is events.ts; the sources are event-sources.ts.
import { randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { bulwarkError } from '../errors/index.js';

/** What changed, by area; each event carries ids, keys or counts only: the page refetches what it shows. */
export const TOPICS = [
  'flags',
  'dependencies',
  'alerts',
  'queues',
  'audit',
  'instances',
  'config',
  'errors',
] as const;
export type Topic = (typeof TOPICS)[number];

/** The data of one event: plain JSON, small. */
export type EventData = Record<string, unknown>;

/**
 * A source that is read on a timer, shared by every connection: `read()` returns its state now
 * (JSON-comparable) and `diff(before, after)` the event data when they differ, else undefined.
 */
export interface PolledSource<S = unknown> {
  topic: Topic;
  read(): S | Promise<S>;
  diff(before: S, after: S): EventData | undefined;
  /** Forget any state of the source's own: called when the hub starts polling again after idling. */
  reset?(): void;
}

/** Options of {@link EventHub}. Times in ms. */
export interface EventHubOptions {
  logger: Logger;
  /** Connections at once (default 100); one more answers 503 `BWK_ERR_ADMIN_STREAMS_FULL`. */
  maxConnections?: number;
  /** At most one event per topic per connection this often (default 1 000). */
  minIntervalMs?: number;
  /** A comment line this often, so proxies and clients see the connection alive (default 15 000). */
  heartbeatMs?: number;
  /** The `retry:` hint given to clients (default 3 000). */
  retryMs?: number;
  /** How often the polled sources are read while a connection is open (default 1 000). */
  pollMs?: number;
  /** A connection whose writes have not drained for this long is dropped (default 30 000). */
  stallMs?: number;
  /** A connection with more than this many bytes waiting to be sent is dropped (default 256 KiB). */
  maxBufferedBytes?: number;
  /** Changes kept for `Last-Event-ID` (default 256). */
  ringSize?: number;
  /** True once the process is shutting down: open streams are ended, new ones refused. */
  isStopping?: () => boolean;
  now?: () => number;
}

/** Most items an array or object field of a coalesced event keeps; beyond it, `more: true`. */
const MAX_ITEMS = 100;
/** How long an ended stream may take to flush at close before it is cut (ms). */
const CLOSE_GRACE_MS = 500;
/** How often the hub's timer runs while connections are open (ms): flushes, polls, stop checks. */
const TICK_MS = 100;

interface Change {
  seq: number;
  topic: Topic;
  data: EventData;
}

interface Pending {
  data: EventData;
  /** The lowest change sequence number folded into it. */
  seq: number;
}

/** The writable side of one stream, as the hub needs it. */
export type StreamSink = Pick<Writable, 'write' | 'end' | 'destroy' | 'once' | 'writableLength'>;

interface Connection {
  sink: StreamSink;
  pending: Map<Topic, Pending>;
  lastSent: Map<Topic, number>;
  /** Every change up to this sequence number has reached the client (sent or folded into a sent event). */
  delivered: number;
  /** Since when a write has been waiting for 'drain', or undefined. */
  blockedSince: number | undefined;
  closed: boolean;
}

/** What the hub has done so far (for tests and the admin API). */
export interface EventHubStats {
  open: number;
  /** Open streams whose writes wait for 'drain' (their client reads slowly, or not at all). */
  blocked: number;
  refused: number;
  dropped: number;
  /** The most bytes ever waiting on one connection. */
  maxBufferedBytes: number;
}

/**
 * The Server-Sent Events hub of one process. `open(sink, lastEventId)` starts a stream (or throws
 * 503 `BWK_ERR_ADMIN_STREAMS_FULL` past `maxConnections` or while stopping); `publish(topic, data)`
 * records a change; polled sources (`addSource`) are read every `pollMs` while at least one stream is
 * open, shared by all of them. Each stream gets at most one event per topic per `minIntervalMs`:
 * changes in between are merged (arrays joined, objects merged, numbers replaced; each bounded to 100
 * items, then `more: true`). Event ids are `<hub>-<seq>`: a client reconnecting with `Last-Event-ID`
 * gets the changes it missed (merged) when this hub still has them, else a `resync` event.
 *
 * Bounded: a stream whose writes do not drain within `stallMs`, or with more than `maxBufferedBytes`
 * waiting, is dropped; nothing else is kept per stream beyond one merged event per topic.
 * `close()` ends every stream; the hub also ends them as soon as `isStopping()` turns true.
 */
export class EventHub {
  readonly #o: Required<Omit<EventHubOptions, 'isStopping'>> & Pick<EventHubOptions, 'isStopping'>;
  readonly #id = randomBytes(4).toString('hex');
  readonly #connections = new Set<Connection>();
  readonly #ring: Change[] = [];
  readonly #sources: { source: PolledSource; state: { value: unknown } | undefined; failing: boolean }[] = [];
  #seq = 0;
  /**
   * A client that saw every change up to here, but none after, can be told what it missed: later
   * changes are in the ring (older ones left it, or were never seen by the pollers while idle).
   */
  #horizon = 0;
  #timer: NodeJS.Timeout | undefined;
  #lastPoll = 0;
  #lastHeartbeat = 0;
  #polling: Promise<void> | undefined;
  #closed = false;
  readonly #stats: EventHubStats = { open: 0, blocked: 0, refused: 0, dropped: 0, maxBufferedBytes: 0 };

  constructor(opts: EventHubOptions) {
    this.#o = {
      maxConnections: 100,
      minIntervalMs: 1_000,
      heartbeatMs: 15_000,
      retryMs: 3_000,
      pollMs: 1_000,
      stallMs: 30_000,
      maxBufferedBytes: 256 * 1024,
      ringSize: 256,
      now: Date.now,
      ...opts,
    };
  }

  get stats(): EventHubStats {
    let blocked = 0;
    for (const connection of this.#connections) if (connection.blockedSince !== undefined) blocked += 1;
    return { ...this.#stats, open: this.#connections.size, blocked };
  }

  /** Adds a source read every `pollMs` while a stream is open. */
  addSource<S>(source: PolledSource<S>): void {
    this.#sources.push({ source, state: undefined, failing: false });
  }

  /** Records a change of `topic`; every open stream gets it (coalesced). Ignored once closed. */
  publish(topic: Topic, data: EventData): void {
    if (this.#closed) return;
    const change = { seq: ++this.#seq, topic, data };
    this.#ring.push(change);
    if (this.#ring.length > this.#o.ringSize) this.#horizon = this.#ring.shift()?.seq ?? this.#horizon;
    for (const connection of this.#connections) {
      this.#fold(connection, change);
      this.#flush(connection);
    }
  }

  /**
   * Starts a stream on `sink`: the `retry:` hint, then a `ready` event (or the missed changes, or
   * `resync`, for a `lastEventId`). The caller removes nothing: the stream leaves the hub when the sink
   * closes or errors, or the hub drops it.
   *
   * @throws BWK_ERR_ADMIN_STREAMS_FULL (503) past `maxConnections`, or while stopping.
   */
  open(sink: StreamSink, lastEventId?: string): void {
    if (this.#closed || this.#connections.size >= this.#o.maxConnections || this.#o.isStopping?.() === true) {
      this.#stats.refused += 1;
      throw bulwarkError('BWK_ERR_ADMIN_STREAMS_FULL', { max: this.#o.maxConnections });
    }
    if (this.#connections.size === 0) this.#wake();
    const resumeFrom = this.#resumePoint(lastEventId);
    const connection: Connection = {
      sink,
      pending: new Map(),
      lastSent: new Map(),
      delivered: resumeFrom ?? this.#seq,
      blockedSince: undefined,
      closed: false,
    };
    const leave = () => this.#drop(connection, 'left');
    sink.once('close', leave);
    sink.once('error', leave);
    this.#connections.add(connection);
    let head = `retry: ${this.#o.retryMs}\n\n`;
    if (lastEventId === undefined || lastEventId === '') head += this.#event('ready', { topics: TOPICS });
    else if (resumeFrom === undefined) head += this.#event('resync', {});
    else for (const change of this.#ring) if (change.seq > resumeFrom) this.#fold(connection, change);
    this.#write(connection, head);
    this.#flush(connection);
  }

  /** Ends every stream and stops the timers; later `open()` calls are refused. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const connection of this.#connections) this.#drop(connection, 'closing');
    this.#sleep();
  }

  /** The sequence number to replay after, or undefined when the client must resync. */
  #resumePoint(lastEventId: string | undefined): number | undefined {
    const match = /^([0-9a-f]+)-(\d+)$/.exec(lastEventId ?? '');
    if (match === null || match[1] !== this.#id) return undefined;
    const seq = Number(match[2]);
    return seq > this.#seq || seq < this.#horizon ? undefined : seq;
  }

  #fold(connection: Connection, change: Change): void {
    const pending = connection.pending.get(change.topic);
    connection.pending.set(
      change.topic,
      pending === undefined
        ? { data: change.data, seq: change.seq }
        : { data: merge(pending.data, change.data), seq: pending.seq },
    );
  }

  /** Sends the topics that are due (one chunk), unless the stream is waiting for 'drain'. */
  #flush(connection: Connection): void {
    if (connection.closed || connection.blockedSince !== undefined || connection.pending.size === 0) return;
    const now = this.#o.now();
    let chunk = '';
    for (const [topic, pending] of connection.pending) {
      if (now - (connection.lastSent.get(topic) ?? -Infinity) < this.#o.minIntervalMs) continue;
      connection.pending.delete(topic);
      connection.lastSent.set(topic, now);
      // Everything before the oldest change still held back has reached the client.
      let held = this.#seq + 1;
      for (const other of connection.pending.values()) held = Math.min(held, other.seq);
      connection.delivered = Math.max(connection.delivered, held - 1);
      chunk += this.#event(topic, pending.data, connection.delivered);
    }
    if (chunk !== '') this.#write(connection, chunk);
  }

  #event(name: string, data: EventData, seq = this.#seq): string {
    return `id: ${this.#id}-${seq}\nevent: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
  }

  #write(connection: Connection, text: string): void {
    if (connection.closed) return;
    const flowing = connection.sink.write(text);
    const buffered = connection.sink.writableLength;
    this.#stats.maxBufferedBytes = Math.max(this.#stats.maxBufferedBytes, buffered);
    if (buffered > this.#o.maxBufferedBytes) {
      this.#o.logger.warn({ buffered }, 'event stream: dropped a client too slow to read its events');
      this.#drop(connection, 'slow');
      return;
    }
    if (flowing || connection.blockedSince !== undefined) return;
    connection.blockedSince = this.#o.now();
    connection.sink.once('drain', () => {
      connection.blockedSince = undefined;
      this.#flush(connection);
    });
  }

  /**
   * Removes a stream: the client `left`, or we end it (`closing`: ended after what was sent; `slow`:
   * destroyed, since what it has not read would never be sent).
   */
  #drop(connection: Connection, why: 'left' | 'closing' | 'slow'): void {
    if (connection.closed) return;
    connection.closed = true;
    connection.pending.clear();
    this.#connections.delete(connection);
    if (why === 'slow') {
      this.#stats.dropped += 1;
      connection.sink.destroy();
    } else if (why === 'closing') {
      // A client that is not reading would hold the end (and the app's close) until it read: cut it.
      if (connection.blockedSince !== undefined) connection.sink.destroy();
      else {
        connection.sink.end();
        setTimeout(() => connection.sink.destroy(), CLOSE_GRACE_MS).unref();
      }
    }
    if (this.#connections.size === 0) this.#sleep();
  }

  /** The first stream opened: start the timer; the pollers start from a fresh state. */
  #wake(): void {
    if (this.#timer !== undefined || this.#closed) return;
    // What the pollers did not see while idle cannot be replayed: a client from before resyncs.
    this.#horizon = ++this.#seq;
    for (const entry of this.#sources) {
      entry.state = undefined;
      entry.source.reset?.();
    }
    this.#lastPoll = 0;
    this.#lastHeartbeat = this.#o.now();
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    this.#timer.unref();
    // After open() has added the stream (a poll round stops when there is none).
    queueMicrotask(() => void this.#poll());
  }

  #sleep(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    if (this.#o.isStopping?.() === true) {
      this.close();
      return;
    }
    const now = this.#o.now();
    const heartbeat = now - this.#lastHeartbeat >= this.#o.heartbeatMs;
    if (heartbeat) this.#lastHeartbeat = now;
    for (const connection of this.#connections) {
      if (connection.blockedSince !== undefined && now - connection.blockedSince > this.#o.stallMs) {
        this.#o.logger.warn(
          { stalledMs: now - connection.blockedSince },
          'event stream: dropped a client that stopped reading',
        );
        this.#drop(connection, 'slow');
        continue;
      }
      if (heartbeat && connection.blockedSince === undefined) this.#write(connection, ': heartbeat\n\n');
      this.#flush(connection);
    }
    if (now - this.#lastPoll >= this.#o.pollMs) void this.#poll();
  }

  /** Reads every polled source once (never two rounds at a time); a failing source keeps its last state. */
  #poll(): Promise<void> {
    if (this.#polling !== undefined) return this.#polling;
    this.#lastPoll = this.#o.now();
    this.#polling = (async () => {
      for (const entry of this.#sources) {
        if (this.#connections.size === 0) return;
        let value: unknown;
        try {
          value = await entry.source.read();
        } catch (error) {
          if (!entry.failing)
            this.#o.logger.warn(
              { err: error, topic: entry.source.topic },
              'event stream: a source cannot be read',
            );
          entry.failing = true;
          continue;
        }
        entry.failing = false;
        const before = entry.state;
        entry.state = { value };
        if (before === undefined) continue;
        const data = entry.source.diff(before.value, value);
        if (data !== undefined) this.publish(entry.source.topic, data);
      }
    })().finally(() => (this.#polling = undefined));
    return this.#polling;
  }
}

/**
 * Two changes of one topic as one: arrays joined (duplicates removed), objects merged, anything else
 * replaced by the newer; an array or object beyond 100 items keeps the newest and sets `more: true`.
 */
export function merge(older: EventData, newer: EventData): EventData {
  const out: EventData = { ...older };
  for (const [key, value] of Object.entries(newer)) {
    const before = out[key];
    if (Array.isArray(before) && Array.isArray(value)) {
      const seen = new Set<string>();
      const items: unknown[] = [...(before as unknown[]), ...(value as unknown[])];
      const joined = items.filter((item) => {
        const id = JSON.stringify(item);
        if (seen.has(id)) return false;
        seen.add(id);
        return true;
      });
      if (joined.length > MAX_ITEMS) out['more'] = true;
      out[key] = joined.slice(-MAX_ITEMS);
    } else if (isObject(before) && isObject(value)) {
      const entries = Object.entries({ ...before, ...value });
      if (entries.length > MAX_ITEMS) out['more'] = true;
      out[key] = Object.fromEntries(entries.slice(-MAX_ITEMS));
    } else out[key] = value;
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

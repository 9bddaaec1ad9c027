// An open-model load generator: requests are due on a fixed schedule whether or not earlier ones
// were answered, and each one's latency counts from the time it was due, so a server that falls
// behind shows its queue instead of slowing the generator down (no coordinated omission; the idea
// of wrk2). It is written on raw sockets with a pre-built request because an HTTP client library
// (undici, node:http) costs the generator several times the CPU per request, and on a 2-core
// machine the generator would saturate before the server did. Keep-alive, one request in flight per
// connection; answers must carry Content-Length (chunked answers are counted as failures).
import net from 'node:net';

/** What {@link openLoad} measured. */
export interface OpenLoadResult {
  /** ms from each request's due time to its answer (NaN for a failed one), in due order */
  times: Float64Array;
  /** non-2xx answers, unparseable answers and requests lost with a closed connection */
  failed: number;
}

interface Conn {
  socket: net.Socket;
  busy: number; // index of the request in flight, -1 when idle
  buffer: Buffer;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const LENGTH = /\r\ncontent-length: *(\d+)/i;

/** Sends GET `path` to 127.0.0.1:`port` at `rate` a second for `seconds` over `connections` sockets. */
export async function openLoad(opts: {
  port: number;
  path: string;
  rate: number;
  seconds: number;
  connections: number;
}): Promise<OpenLoadResult> {
  const request = Buffer.from(`GET ${opts.path} HTTP/1.1\r\nHost: 127.0.0.1:${opts.port}\r\n\r\n`);
  const total = Math.round(opts.rate * opts.seconds);
  const times = new Float64Array(total).fill(Number.NaN);
  const dueAt = (i: number) => start + (i * 1000) / opts.rate;
  let failed = 0;
  let settled = 0;
  let due = 0; // requests whose time has come
  let sent = 0; // requests handed to a connection (FIFO: the oldest due goes first)
  let start = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const settle = (i: number, ok: boolean) => {
    times[i] = performance.now() - dueAt(i);
    if (!ok) failed += 1;
    settled += 1;
    if (settled === total) finish();
  };
  const idle: Conn[] = [];
  const dispatch = () => {
    while (sent < due && idle.length > 0) {
      const conn = idle.pop()!;
      conn.busy = sent;
      sent += 1;
      conn.socket.write(request);
    }
  };
  const onData = (conn: Conn, chunk: Buffer) => {
    conn.buffer = conn.buffer.length === 0 ? chunk : Buffer.concat([conn.buffer, chunk]);
    const end = conn.buffer.indexOf(HEADER_END);
    if (end === -1) return;
    const head = conn.buffer.toString('latin1', 0, end);
    const length = LENGTH.exec(head);
    if (length === null) {
      conn.buffer = Buffer.alloc(0);
      settle(conn.busy, false);
      conn.socket.destroy(); // cannot tell where this answer ends
      return;
    }
    if (conn.buffer.length < end + 4 + Number(length[1])) return;
    conn.buffer = Buffer.alloc(0);
    const status = Number(head.slice(9, 12));
    const i = conn.busy;
    conn.busy = -1;
    idle.push(conn);
    settle(i, status >= 200 && status <= 299);
    dispatch();
  };
  const conns = await Promise.all(
    Array.from(
      { length: opts.connections },
      () =>
        new Promise<Conn>((resolve, reject) => {
          const socket = net.connect(opts.port, '127.0.0.1');
          const conn: Conn = { socket, busy: -1, buffer: Buffer.alloc(0) };
          socket.setNoDelay(true);
          socket.once('connect', () => resolve(conn));
          socket.once('error', reject);
          socket.on('data', (chunk: Buffer) => onData(conn, chunk));
          socket.on('close', () => {
            const at = idle.indexOf(conn);
            if (at !== -1) idle.splice(at, 1);
            if (conn.busy !== -1) settle(conn.busy, false);
            conn.busy = -1;
          });
        }),
    ),
  );
  idle.push(...conns);
  start = performance.now();
  // Timers fire at ~1 ms granularity: each tick releases every request whose time has come; each
  // one's latency still counts from its own due time.
  const tick = () => {
    const now = performance.now();
    while (due < total && dueAt(due) <= now) due += 1;
    dispatch();
    if (due < total) setTimeout(tick, 1);
    // Requests due but never sent because every connection closed: count them failed, end the run.
    if (idle.length === 0 && conns.every((c) => c.socket.destroyed)) {
      for (let i = sent; i < total; i += 1) settle(i, false);
      sent = total;
      due = total;
    }
  };
  tick();
  await done;
  for (const conn of conns) conn.socket.destroy();
  return { times, failed };
}

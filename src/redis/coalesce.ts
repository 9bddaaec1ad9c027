import type { Redis } from 'ioredis';

/**
 * Sends the commands a client issues in one turn of the event loop to Redis in at most two socket
 * writes: the turn's first command at once, every later one together at the turn's end.
 *
 * ioredis writes each command to its socket as it is issued: a system call per command. Under load
 * a turn issues many (each request's rate-limit check, cache read and write, announcements), and
 * those writes were a large share of an app's CPU (issue 18: the socket writes of the Redis client
 * were the top entry of the failover benchmark's profile). Here the first write of a turn goes out
 * as before; the second corks the socket until the turn's check phase (`setImmediate`), when Node
 * hands every buffered command to the kernel in one `writev`.
 *
 * A lone command (light traffic, a sequential caller) is written at once, as without this: corking
 * it too cost ~10 µs per command (the rest of the turn) in a sequential benchmark. Under load the
 * later commands of a turn wait for its end, so some replies are read a turn later, but nothing
 * waits for an earlier batch's replies: ioredis's own `enableAutoPipelining` holds a turn's
 * commands while the previous batch is in flight, which made lone commands wait a round trip
 * (tried and reverted, docs/benchmarks.md).
 *
 * Applied to the client's socket if it has one and to each new one ('connect'), so reconnects keep
 * it; a socket is patched once, however often this is called (BullMQ hands its clients over once
 * they are connected, and the same client may be reached twice).
 */
export function coalesceWrites(client: Pick<Redis, 'stream' | 'on'>): void {
  const stream = client.stream as Redis['stream'] | undefined; // none before the first connection
  if (stream !== undefined) coalesce(stream);
  client.on('connect', () => coalesce(client.stream));
}

const patched = new WeakSet<Redis['stream']>();

function coalesce(socket: Redis['stream']): void {
  if (patched.has(socket)) return;
  patched.add(socket);
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  // 'idle': nothing written this turn; 'sent': the turn's first command went out; 'corked'.
  let turn: 'idle' | 'sent' | 'corked' = 'idle';
  const endTurn = () => {
    if (turn === 'corked') socket.uncork();
    turn = 'idle';
  };
  socket.write = (...args: unknown[]) => {
    if (turn === 'idle') {
      turn = 'sent';
      setImmediate(endTurn);
    } else if (turn === 'sent') {
      turn = 'corked';
      socket.cork();
    }
    return write(...args);
  };
}

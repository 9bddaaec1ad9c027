import type { Redis } from 'ioredis';

/**
 * Sends the commands a client issues in one turn of the event loop to Redis in one socket write.
 *
 * ioredis writes each command to its socket as it is issued: a system call per command. Under load
 * a turn issues many (each request's rate-limit check, cache read and write, announcements), and
 * those writes were a large share of an app's CPU (issue 18: the socket writes of the Redis client
 * were the top entry of the failover benchmark's profile). Here the first write of a turn corks the
 * socket and the turn's check phase (`setImmediate`) uncorks it: Node then hands every buffered
 * command to the kernel in one `writev`.
 *
 * Nothing waits for a reply: a reply cannot be read before the next poll phase of the loop, which
 * comes after the check phase, so no command gets its answer later than it would have. (ioredis's
 * own `enableAutoPipelining` holds a turn's commands while the previous batch is still in flight,
 * which made lone commands wait a round trip; tried and reverted, docs/benchmarks.md.) A command
 * issued from a `setImmediate` callback goes out in the next turn's check phase.
 *
 * Applied to each new connection ('connect'), so reconnects keep it.
 */
export function coalesceWrites(client: Redis): void {
  client.on('connect', () => {
    const socket = client.stream;
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
    let corked = false;
    const uncork = () => {
      corked = false;
      socket.uncork();
    };
    socket.write = (...args: unknown[]) => {
      if (!corked) {
        corked = true;
        socket.cork();
        setImmediate(uncork);
      }
      return write(...args);
    };
  });
}

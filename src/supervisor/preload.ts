/**
 * The source of the preload the supervisor injects into every Node process of the app
 * (`NODE_OPTIONS=--require <stateDir>/listen-preload.cjs`) in `--balance socket` mode. It is kept as
 * a string because it must run as plain CommonJS in any app (ESM or not, Bulwark or not), from
 * `src/` under tsx as from `dist/`: the supervisor writes it into its private state directory.
 *
 * What it does, only when the supervisor's socket is at `BULWARK_LISTEN_FD` (a TCP socket):
 * - the first `listen()` on the public port (`BULWARK_LISTEN_PORT`, a number, a numeric string or
 *   `{ port }`) listens on that inherited socket instead (`listen({ fd })`), so every instance
 *   accepts from the one socket the supervisor keeps open and the kernel queues connections while
 *   none accepts;
 * - once listening, it opens a private probe port on 127.0.0.1 whose connections are handed to the
 *   same server, and reports `{ type: 'listening', pid, probePort }` on the channel
 *   (`BULWARK_LISTEN_CHANNEL_FD`, a socketpair with the supervisor), so probes reach this process
 *   and not whichever instance the kernel picks;
 * - with `BULWARK_LISTEN_ADMIT=probes` (a reload's new process) the app's server listens on its private
 *   probe port only, and takes connections from the shared socket (through an acceptor that hands
 *   them to the server) once the supervisor sends `{ type: 'admit' }`, after its probes passed: a
 *   new version that fails its probes never answers a public request;
 * - with `BULWARK_LISTEN_DEALT=1` (`--balance round-robin`) and an IPC channel, the server listens on
 *   its private probe port alone and serves the connections the supervisor deals it over IPC
 *   (`{ type: 'bulwark:connection' }` with the socket), reported as `dealt: true`;
 * - when the channel closes (the supervisor died), it drains the same way and then sends the app
 *   process SIGTERM, so no orphan keeps the shared socket, and the port, after its supervisor;
 * - on `{ type: 'drain' }` from the supervisor it stops accepting (the listening handle only), answers
 *   every later response with `Connection: close`, closes connections idle for a while, and reports
 *   `{ type: 'drained' }` once no connection is left (the supervisor then sends SIGTERM).
 *
 * File descriptors survive `exec`, so it also works when the command is `npm start` or `sh -c`: the
 * Node process that listens inherits both descriptors and the NODE_OPTIONS.
 */
export const PRELOAD_SOURCE = String.raw`'use strict';
// Written by bulwark supervise (src/supervisor/preload.ts); see that file for what and why.
(() => {
  const net = require('node:net');
  const fs = require('node:fs');
  const env = process.env;
  const fd = Number(env.BULWARK_LISTEN_FD);
  const port = Number(env.BULWARK_LISTEN_PORT);
  const channelFd = Number(env.BULWARK_LISTEN_CHANNEL_FD);
  const isSocket = (n) => {
    try {
      return Number.isInteger(n) && n > 2 && fs.fstatSync(n).isSocket();
    } catch {
      return false;
    }
  };
  if (!isSocket(fd) || !Number.isInteger(port) || port <= 0) return;
  const original = net.Server.prototype.listen;
  let taken = false;
  const asPort = (v) => (typeof v === 'number' || (typeof v === 'string' && /^\d+$/.test(v)) ? Number(v) : NaN);
  const wantsPublicPort = (args) => {
    const first = args[0];
    if (first !== null && typeof first === 'object')
      return first.fd === undefined && first.path === undefined && first.handle === undefined && first._handle === undefined && asPort(first.port) === port;
    return asPort(first) === port;
  };
  // A reload's new process accepts from the shared socket only once the supervisor admits it
  // (after its probes passed); until then it listens on its private probe port alone.
  const admitLater = env.BULWARK_LISTEN_ADMIT === 'probes';
  // --balance round-robin: the supervisor accepts and deals connections over the IPC channel (a
  // process it started directly, or through sh -c); the app listens on its probe port alone.
  const dealt = env.BULWARK_LISTEN_DEALT === '1' && typeof process.send === 'function';
  net.Server.prototype.listen = function listen(...args) {
    if (taken || !wantsPublicPort(args)) return original.apply(this, args);
    taken = true;
    const last = args[args.length - 1];
    const options = admitLater || dealt ? { port: 0, host: '127.0.0.1' } : { fd };
    if (args[0] !== null && typeof args[0] === 'object' && args[0].backlog !== undefined) options.backlog = args[0].backlog;
    if (typeof last === 'function') original.call(this, options, last);
    else original.call(this, options);
    this.once('listening', () => shared(this));
    return this;
  };

  let channel;
  const send = (message) => {
    if (channel === undefined || channel.destroyed) return;
    channel.write(JSON.stringify(message) + '\n');
  };

  function shared(server) {
    // Every connection the server serves passes here, whoever accepted it (the server itself, the
    // acceptor, the probe port or the supervisor's dealer): a drain tells each one's response in
    // flight to close the connection after it, and waits for the set to empty. Per connection, not
    // per request (a listener per request costs its p99).
    const connections = new Set();
    let draining = false;
    server.on('connection', (socket) => {
      connections.add(socket);
      socket.once('close', () => connections.delete(socket));
    });
    // A public connection accepted for the server (by the acceptor or the supervisor's dealer) gets
    // what net.Server gives the connections it accepts itself: its maxConnections cap (with a 'drop'
    // event past it) and its keep-alive and no-delay options.
    let adopted = 0;
    const adopt = (socket) => {
      if (server.maxConnections && adopted >= server.maxConnections) {
        const { localAddress, localPort, localFamily, remoteAddress, remotePort, remoteFamily } = socket;
        server.emit('drop', { localAddress, localPort, localFamily, remoteAddress, remotePort, remoteFamily });
        socket.destroy();
        return;
      }
      adopted += 1;
      socket.once('close', () => (adopted -= 1));
      if (server.keepAlive) socket.setKeepAlive(true, server.keepAliveInitialDelay * 1000);
      if (server.noDelay === false) socket.setNoDelay(false);
      server.emit('connection', socket);
    };
    // Admitted later: the server itself listens on the probe port, and an acceptor on the shared
    // socket hands it the public connections once admitted. Else the probe port hands them over.
    const probeAddress = admitLater || dealt ? net.Server.prototype.address.call(server) : undefined;
    let acceptor;
    if (dealt) {
      server.address = () => ({ address: '::', family: 'IPv6', port });
      process.on('message', (message, socket) => {
        if (message === null || typeof message !== 'object' || message.type !== 'bulwark:connection' || !socket) return;
        adopt(socket);
      });
      // Listening for messages holds the channel open; the app's own servers and timers decide
      // when it exits, as without the supervisor.
      if (process.channel && typeof process.channel.unref === 'function') process.channel.unref();
    } else if (admitLater) {
      // What the app sees as its address: the public port, not the private one it listens on.
      server.address = () => (acceptor !== undefined && acceptor.listening ? acceptor.address() : { address: '::', family: 'IPv6', port });
      const close = server.close;
      server.close = function closeAll(...rest) {
        if (acceptor !== undefined && acceptor.listening) acceptor.close();
        return close.apply(this, rest);
      };
    }
    const admit = () => {
      if (!admitLater || dealt || acceptor !== undefined || draining) return;
      acceptor = net.createServer({ noDelay: true }, adopt);
      acceptor.unref();
      acceptor.on('error', () => undefined);
      acceptor.listen({ fd }, () => send({ type: 'admitted', pid: process.pid }));
    };
    const probe = admitLater || dealt ? undefined : net.createServer({ noDelay: true }, (socket) => server.emit('connection', socket));
    if (probe !== undefined) {
      probe.unref();
      probe.on('error', () => undefined);
    }
    if (!isSocket(channelFd)) return admit();
    channel = new net.Socket({ fd: channelFd, readable: true, writable: true });
    channel.unref();
    channel.on('error', () => undefined);
    // The supervisor is gone (killed with -9, say): nobody will restart, probe or stop this process,
    // and its inherited socket would keep the port taken from the next supervisor. Drain, then
    // stop the app through its own SIGTERM handling.
    let orphaned = false;
    channel.on('close', () => {
      orphaned = true;
      if (!draining) drain();
    });
    let buffered = '';
    channel.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      let at;
      while ((at = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, at);
        buffered = buffered.slice(at + 1);
        let message;
        try {
          message = JSON.parse(line);
        } catch {
          continue;
        }
        if (message && message.type === 'drain' && !draining) drain();
        else if (message && message.type === 'admit') admit();
      }
    });
    if (probe === undefined) send({ type: 'listening', pid: process.pid, probePort: probeAddress.port, dealt });
    else probe.listen(0, '127.0.0.1', () => send({ type: 'listening', pid: process.pid, probePort: probe.address().port }));

    function drain() {
      draining = true;
      // Stop accepting: the listening handle only. http.Server#close() would also close idle
      // keep-alive connections at once, racing a client that is sending on one right now.
      if (acceptor !== undefined && acceptor.listening) acceptor.close();
      if (server.listening && probe !== undefined) net.Server.prototype.close.call(server, () => undefined);
      for (const socket of connections) {
        const response = socket._httpMessage;
        if (response && !response.headersSent) response.shouldKeepAlive = false;
      }
      server.prependListener('request', (request, response) => {
        response.shouldKeepAlive = false;
      });
      const started = Date.now();
      const timer = setInterval(() => {
        // A connection idle this long is not about to carry a request: close it.
        if (Date.now() - started > 1000 && typeof server.closeIdleConnections === 'function') server.closeIdleConnections();
        if (connections.size > 0) return;
        clearInterval(timer);
        if (probe !== undefined) probe.close();
        else if (server.listening) net.Server.prototype.close.call(server, () => undefined);
        send({ type: 'drained', pid: process.pid });
        if (orphaned) process.kill(process.pid, 'SIGTERM');
      }, 50);
      timer.unref();
    }
  }
})();
`;

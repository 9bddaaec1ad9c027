import type { Duplex } from 'node:stream';

/** A line the listen preload writes (src/supervisor/preload.ts). */
type PreloadMessage =
  | { type: 'listening'; pid: number; probePort: number; dealt?: boolean }
  | { type: 'admitted'; pid: number }
  | { type: 'drained'; pid: number };

/**
 * The supervisor's end of an app process's listen channel (`--balance socket`): JSON lines from the
 * listen preload in the app, and the drain request to it. An app that never listens on the shared
 * socket (not Node, or a Node process that listens elsewhere) simply never writes.
 */
export class ListenChannel {
  /** The app's private probe port on 127.0.0.1, once it listens on the shared socket. */
  probePort: number | undefined;
  /** The pid of the process that listens (the app's, or a descendant's under `sh -c`). */
  pid: number | undefined;
  /** `--balance round-robin`: the app takes its connections from the supervisor over IPC. */
  dealt = false;
  /** Called once the app listens on the shared socket. */
  onListening: (() => void) | undefined;
  readonly #stream: Duplex;
  #buffered = '';
  #drained = false;
  #drainWaiters: (() => void)[] = [];

  constructor(stream: Duplex) {
    this.#stream = stream;
    // The app may exit mid-write or never open its end: nothing to report then.
    stream.on('error', () => undefined);
    stream.on('data', (chunk: Buffer) => this.#read(chunk));
    stream.on('close', () => this.#settle());
  }

  #read(chunk: Buffer): void {
    this.#buffered += chunk.toString('utf8');
    // One report is a few dozen bytes: a peer writing more without a newline is not the preload.
    if (this.#buffered.length > 65_536) this.#buffered = '';
    for (let at = this.#buffered.indexOf('\n'); at !== -1; at = this.#buffered.indexOf('\n')) {
      const line = this.#buffered.slice(0, at);
      this.#buffered = this.#buffered.slice(at + 1);
      let message: PreloadMessage;
      try {
        message = JSON.parse(line) as PreloadMessage;
      } catch {
        continue;
      }
      if (message.type === 'listening' && Number.isInteger(message.probePort)) {
        this.probePort = message.probePort;
        this.pid = message.pid;
        this.dealt = message.dealt === true;
        this.onListening?.();
      } else if (message.type === 'drained') this.#settle();
    }
  }

  #settle(): void {
    this.#drained = true;
    for (const waiter of this.#drainWaiters.splice(0)) waiter();
  }

  /** Lets an app started with `BULWARK_LISTEN_ADMIT=probes` accept from the shared socket. */
  admit(): void {
    if (this.#stream.writable) this.#stream.write(`${JSON.stringify({ type: 'admit' })}\n`);
  }

  /** Asks the app to drain; resolves once it reported that no connection is left (or the channel closed). */
  drain(): Promise<void> {
    if (this.#drained) return Promise.resolve();
    if (this.#stream.writable) this.#stream.write(`${JSON.stringify({ type: 'drain' })}\n`);
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }
}

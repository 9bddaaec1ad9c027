import type { Logger } from 'pino';
import type { AppMessage, RecoveryLevel, SupervisorMessage } from './protocol.js';
import { startReportWorker, stopReportWorker } from './report-worker.js';

/** What a recovery handler is told. */
export interface RecoveryRequest {
  level: RecoveryLevel;
  resource: 'memory' | 'cpu';
  /** The measurement that triggered it (bytes of RSS, or CPU percent). */
  value: number;
  limit: number;
}

/**
 * Runs on a recovery request; returns what it did (shown in the supervisor's records).
 * `soft`: give back memory/CPU you can do without (caches). `medium`: also shed non-essential
 * work until `normal`. Hard recovery needs nothing from the app: it is drained and restarted.
 */
export type RecoveryHandler = (request: RecoveryRequest) => string[] | void | Promise<string[] | void>;

/**
 * The app's side of `bulwark supervise`: announces itself, sends heartbeats from the event loop
 * (their absence is how the supervisor tells a blocked loop from slow requests), says when it is
 * ready, and runs recovery handlers when the supervisor asks. `connect()` returns undefined when
 * the process is not supervised. When the supervisor goes away the app gets a SIGTERM (a graceful
 * shutdown) rather than running on unsupervised.
 *
 * When the supervisor offers hang reports (a private pipe named by `BULWARK_SUPERVISOR_REPORT_FD`),
 * a worker thread answers its report requests even while the event loop is blocked (see
 * `report-worker.ts`); no inspector port is opened.
 */
export class SupervisorClient {
  readonly instanceId: string;
  readonly #handlers = new Set<RecoveryHandler>();
  readonly #timer: NodeJS.Timeout;
  readonly #logger: Logger | undefined;
  readonly #onMessage: (message: SupervisorMessage) => void;
  readonly #onDisconnect: () => void;
  #level: RecoveryLevel = 'normal';
  #readySent = false;
  #closed = false;

  private constructor(logger: Logger | undefined, version: string) {
    this.#logger = logger;
    this.instanceId = process.env['BULWARK_INSTANCE_ID'] ?? String(process.pid);
    const everyMs = Math.max(10, Number(process.env['BULWARK_HEARTBEAT_MS']) || 500);
    const reportFd = Number(process.env['BULWARK_SUPERVISOR_REPORT_FD'] ?? Number.NaN);
    // The pipe is this process's alone: a process it starts must not think it may answer on it.
    delete process.env['BULWARK_SUPERVISOR_REPORT_FD'];
    const reports = Number.isInteger(reportFd) && reportFd > 2 && startReportWorker(reportFd) !== undefined;
    this.#send({ type: 'bulwark:hello', pid: process.pid, version, reports });
    this.#timer = setInterval(() => this.#send({ type: 'bulwark:heartbeat' }), everyMs);
    this.#timer.unref();
    this.#onMessage = (message) => void this.#handle(message);
    this.#onDisconnect = () => {
      if (this.#closed) return;
      this.#logger?.warn('the supervisor went away: shutting down');
      process.kill(process.pid, 'SIGTERM');
    };
    process.on('message', this.#onMessage);
    process.on('disconnect', this.#onDisconnect);
    // The channel must not keep the process alive on its own.
    process.channel?.unref();
  }

  /** The client when this process runs under `bulwark supervise` with an IPC channel, else undefined. */
  static connect(opts: { logger?: Logger; version: string }): SupervisorClient | undefined {
    if (process.env['BULWARK_SUPERVISED'] !== '1' || typeof process.send !== 'function' || !process.connected)
      return undefined;
    return new SupervisorClient(opts.logger, opts.version);
  }

  /** The recovery level in force: `medium` means shed non-essential work. */
  get level(): RecoveryLevel {
    return this.#level;
  }

  /** Tells the supervisor the app is ready to serve (once). */
  ready(): void {
    if (this.#readySent) return;
    this.#readySent = true;
    this.#send({ type: 'bulwark:ready' });
  }

  /** Adds a recovery handler; returns its remover. */
  onRecover(handler: RecoveryHandler): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    stopReportWorker();
    process.off('message', this.#onMessage);
    process.off('disconnect', this.#onDisconnect);
  }

  async #handle(message: SupervisorMessage): Promise<void> {
    if (typeof message !== 'object' || message === null || message.type !== 'bulwark:recover') return;
    this.#level = message.level;
    const request: RecoveryRequest = {
      level: message.level,
      resource: message.resource,
      value: message.value,
      limit: message.limit,
    };
    const actions: string[] = [];
    for (const handler of this.#handlers) {
      try {
        const done = await handler(request);
        if (Array.isArray(done)) actions.push(...done);
      } catch (error) {
        actions.push(`a handler failed: ${(error as Error).message}`);
      }
    }
    this.#logger?.warn(
      { level: message.level, resource: message.resource, value: message.value, actions },
      message.level === 'normal'
        ? 'supervisor: pressure gone'
        : `supervisor asked for ${message.level} recovery`,
    );
    this.#send({ type: 'bulwark:recovered', level: message.level, actions });
  }

  #send(message: AppMessage): void {
    if (this.#closed || !process.connected) return;
    try {
      process.send?.(message);
    } catch {
      // The channel closed meanwhile: the disconnect handler takes it from here.
    }
  }
}

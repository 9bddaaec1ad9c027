import path from 'node:path';
import type { Duplex } from 'node:stream';
import { writeFileAtomic } from '../store/atomic-file.js';
import { privateDir } from './private-files.js';
import { redactDeep } from './redact.js';

/** The largest answer taken from an app's report pipe (a report is typically 50–500 KiB). */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

interface Waiter {
  resolve: (report: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * The supervisor's end of an app's report pipe (an anonymous pipe created at spawn for this one
 * process: no port, nothing another user can reach). Sends report requests and matches the
 * answers, one JSON object a line (see `report-worker.ts`, the app's end). Never throws on the
 * pipe's errors: pending requests are rejected when it closes.
 */
export class ReportChannel {
  readonly #pipe: Duplex;
  readonly #waiters = new Map<number, Waiter>();
  #chunks: string[] = [];
  #bytes = 0;
  #nextId = 1;
  #closed = false;

  constructor(pipe: Duplex) {
    this.#pipe = pipe;
    pipe.setEncoding('utf8');
    pipe.on('data', (chunk: string) => this.#onData(chunk));
    pipe.on('error', () => undefined);
    pipe.on('close', () => this.#close(new Error('the app closed its report pipe')));
  }

  /**
   * Asks the app for a diagnostic report taken on its paused main thread; resolves with the report
   * object as the app sent it (secrets included: redact before writing it anywhere). Rejects after
   * `timeoutMs`, when the app answers with an error, or when the pipe closes.
   */
  request(timeoutMs: number): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error('the report pipe is closed'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(id);
        reject(new Error(`no report within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.set(id, { resolve, reject, timer });
      this.#pipe.write(`${JSON.stringify({ type: 'report', id })}\n`);
    });
  }

  #onData(chunk: string): void {
    let newline = chunk.indexOf('\n');
    // Most of a report arrives without a line end: keep the pieces, join once the line is complete.
    while (newline !== -1) {
      this.#chunks.push(chunk.slice(0, newline));
      const line = this.#chunks.join('');
      this.#chunks = [];
      this.#bytes = 0;
      this.#onLine(line);
      chunk = chunk.slice(newline + 1);
      newline = chunk.indexOf('\n');
    }
    if (chunk === '') return;
    this.#bytes += chunk.length;
    if (this.#bytes > MAX_ANSWER_BYTES) {
      this.#chunks = [];
      this.#bytes = 0;
      this.#close(new Error(`a report answer over ${MAX_ANSWER_BYTES} bytes`));
      this.#pipe.destroy();
      return;
    }
    this.#chunks.push(chunk);
  }

  #onLine(line: string): void {
    let answer: { id?: unknown; report?: unknown; error?: unknown };
    try {
      answer = JSON.parse(line) as typeof answer;
    } catch {
      return;
    }
    const waiter = typeof answer.id === 'number' ? this.#waiters.get(answer.id) : undefined;
    if (waiter === undefined) return;
    this.#waiters.delete(answer.id as number);
    clearTimeout(waiter.timer);
    if (answer.report !== undefined) waiter.resolve(answer.report);
    else waiter.reject(new Error(`the app could not take a report: ${String(answer.error)}`));
  }

  #close(error: Error): void {
    this.#closed = true;
    for (const waiter of this.#waiters.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.#waiters.clear();
  }
}

/**
 * Writes a Node diagnostic report of a process whose event loop is blocked, which neither
 * `--report-on-signal` nor an IPC request can do (both need the loop): the app's report worker
 * pauses the main thread and builds the report there, so it holds the blocked JavaScript stack,
 * native stack, heap and libuv state. The report is redacted before it touches the disk (every
 * environment variable with a secret name masked, URL credentials and the known `secrets`
 * scrubbed everywhere) and written atomically, mode 0600, into `dir` (made 0700). The app's main
 * thread is resumed; the caller kills it. Resolves with the report's path; rejects after
 * `timeoutMs` or when the app cannot take one.
 */
export async function captureHangReport(opts: {
  channel: ReportChannel;
  pid: number;
  dir: string;
  secrets: readonly string[];
  timeoutMs: number;
}): Promise<string> {
  const report = await opts.channel.request(opts.timeoutMs);
  privateDir(opts.dir);
  const file = path.join(opts.dir, `hang-${opts.pid}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFileAtomic(file, `${JSON.stringify(redactDeep(report, opts.secrets), null, 2)}\n`);
  return file;
}

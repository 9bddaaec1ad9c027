// SQLite reads that walk many rows, on a worker thread. better-sqlite3 runs every query on the
// calling thread: a count over a table that grew large (the queue spool after a long Redis outage,
// ~60 ms for 35 000 jobs under load, seen in the failover benchmark's after window) stops every
// request for that long, at each metrics scrape. Such reads go to a worker with a connection of its
// own (WAL lets it read beside the app's writes, seeing every committed write), and the app's
// event loop only waits for the answer.
import type { Worker } from 'node:worker_threads';
import { announceResourceStep } from '../parts/steps.js';
import { sqliteWorker } from './sqlite-worker.js';

/** A query as Kysely compiles it. */
export interface ReadQuery {
  readonly sql: string;
  readonly parameters: readonly unknown[];
}

/** Reads run off the event loop: see {@link startReader}. */
export interface AsideReader {
  /**
   * The query's rows, read on the worker; by `here` while it starts (the first read starts it) and
   * where it cannot run (it failed, or stopped).
   */
  all<R>(query: ReadQuery, here: () => Promise<R[]>): Promise<R[]>;
  /** Starts the worker if it has not started; resolves `true` once it answers reads, `false` if it cannot. */
  ready(): Promise<boolean>;
  /** Ends the worker; reads in flight are answered by their `here`. Idempotent. */
  stop(): Promise<void>;
}

/**
 * The worker's code after its prologue (`sqliteWorker`), which opens the file with `query_only` (no
 * write can run on it). It answers `{ id, sql, parameters }` with `{ id, rows }` or `{ id, error }`,
 * keeping its prepared statements, and ends on `stop`.
 */
const WORKER_BODY = String.raw`
const statements = new Map();
parentPort.on('message', (message) => {
  if (message === 'stop') {
    db.close();
    process.exit(0);
  }
  try {
    let statement = statements.get(message.sql);
    if (statement === undefined) {
      statement = db.prepare(message.sql);
      if (statements.size < 100) statements.set(message.sql, statement);
    }
    parentPort.postMessage({ id: message.id, rows: statement.all(message.parameters) });
  } catch (error) {
    parentPort.postMessage({ id: message.id, error: { message: String(error && error.message), code: error && error.code } });
  }
});
parentPort.postMessage({ type: 'ready' });
`;

interface Pending {
  resolve: (rows: unknown[]) => void;
  reject: (error: Error) => void;
  here: () => Promise<unknown[]>;
}

/**
 * A reader of the SQLite `file` on a worker thread, started at its first read (a store that is
 * never asked such a read never pays the thread, ~9 MiB; leak detection hears of the step), which
 * like every read until the worker is up runs on the caller's connection (`here`). If the
 * worker cannot start or dies, reads run on the caller's connection from then on (`here`), and
 * `onError` is told once. The worker keeps the process alive only while it starts, while a read
 * waits for it (a CLI command's count), as the query on the caller's thread would, and while
 * {@link AsideReader.stop} waits for it to end.
 */
export function startReader(file: string, onError?: (error: Error) => void): AsideReader {
  let worker: Worker | undefined;
  let ready: Promise<boolean> | undefined;
  /** Started and answering reads. */
  let answering = false;
  let broken = false;
  let stopping = false;
  let exited: Promise<void> | undefined;
  let next = 0;
  const pending = new Map<number, Pending>();
  const fail = (error: Error) => {
    if (broken) return;
    broken = true;
    if (!stopping) onError?.(error);
    // Reads in flight are answered here instead.
    for (const [id, read] of pending) {
      pending.delete(id);
      read.here().then(read.resolve, read.reject);
    }
  };
  const start = (): Promise<boolean> =>
    new Promise((resolve) => {
      try {
        worker = sqliteWorker(file, ['query_only = ON', 'busy_timeout = 5000'], WORKER_BODY);
      } catch (error) {
        fail(error as Error);
        resolve(false);
        return;
      }
      // Held while it starts, while a read waits on it (a CLI's only pending work) and while it
      // stops (stop() may come as it starts: a process that ends soon after its first read), else
      // unref'd.
      const current = worker;
      exited = new Promise((done) => current.once('exit', () => done()));
      worker.on('message', (message: { type?: string; message?: string; id?: number } & Answer) => {
        if (message.type === 'ready') {
          if (!stopping) current.unref();
          announceResourceStep({
            what: "the store's read worker started",
            signals: ['rss', 'fds', 'handles'],
          });
          resolve(true);
        } else if (message.type === 'failed') {
          fail(new Error(`the store's read worker cannot open ${file}: ${message.message}`));
          resolve(false);
        } else if (message.id !== undefined) answer(message.id, message);
      });
      worker.on('error', (error) => {
        fail(error);
        resolve(false);
      });
      worker.on('exit', () => {
        fail(new Error("the store's read worker stopped"));
        resolve(false);
      });
    });
  const answer = (id: number, message: Answer) => {
    const read = pending.get(id);
    if (read === undefined) return;
    pending.delete(id);
    if (pending.size === 0 && !stopping) worker?.unref();
    if (message.error === undefined) read.resolve(message.rows ?? []);
    else read.reject(Object.assign(new Error(message.error.message), { code: message.error.code }));
  };

  const begin = (): Promise<boolean> => (ready ??= start().then((up) => (answering = up)));

  return {
    async all<R>(query: ReadQuery, here: () => Promise<R[]>): Promise<R[]> {
      void begin(); // a read does not wait the ~50 ms a thread takes to start: `here` answers it
      if (broken || !answering || worker === undefined) return here();
      const id = (next += 1);
      const rows = new Promise<unknown[]>((resolve, reject) => {
        pending.set(id, { resolve, reject, here });
      });
      worker.ref();
      worker.postMessage({ id, sql: query.sql, parameters: query.parameters });
      return (await rows) as R[];
    },
    ready: begin,
    async stop() {
      if (stopping) return exited;
      stopping = true;
      fail(new Error("the store's read worker was stopped")); // reads in flight go to `here`
      worker?.ref(); // until it has closed its connection
      worker?.postMessage('stop');
      await exited;
    },
  };
}

interface Answer {
  rows?: unknown[];
  error?: { message: string; code?: string };
}

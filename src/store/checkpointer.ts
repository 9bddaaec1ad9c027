// SQLite WAL checkpoints on a worker thread. By default SQLite checkpoints inside the commit that
// takes the WAL past 1 000 pages (~4 MB): that commit copies the pages into the database file and
// fsyncs both files on the event loop, a 5–10 ms stall every few MB written (seen as 7–10 ms runs
// of commitTransaction in Spin's CPU profile under bench:spin). Here a worker thread with a connection of its
// own runs `PASSIVE` checkpoints beside the app (they never wait for, nor block, the app's reads and
// writes) and the app's connection checkpoints no more.
import { statSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { announceResourceStep } from '../parts/steps.js';
import { sqliteWorker } from './sqlite-worker.js';

/** How a store's SQLite connection has its WAL checkpointed: see `StoreOptions.checkpoint`. */
export type StoreCheckpoint = 'background' | 'inline';

/** The WAL size from which a store's checkpoints move to the worker (before it, there are none). */
export const CHECKPOINT_WORKER_FROM_BYTES = 1024 * 1024;
/** How often the WAL's size is looked at until then, ms. */
const WATCH_EVERY_MS = 250;
/** SQLite's own threshold (`wal_autocheckpoint`), restored while no worker checkpoints. */
const INLINE_AUTOCHECKPOINT_PAGES = 1000;

/** Tuning of {@link startCheckpointer} (tests shorten it). */
export interface CheckpointerOptions {
  /** The worker starts once the WAL file has reached this size (default 1 MiB; 0: at once). */
  fromBytes?: number;
  /** The worker's checkpoints while writes come, ms apart (default 100); idle, up to 10× that. */
  everyMs?: number;
  /**
   * WAL frames (pages) from which the app's connection checkpoints once itself (default 4 096, 16 MB
   * of 4 KiB pages). SQLite starts the WAL over only when a write begins with every page of it
   * copied; under writes that never pause, the worker's checkpoint never ends with no write in
   * between, and the WAL grows. A checkpoint on the app's connection, between two of its
   * transactions, copies the few pages the worker has not and lets its next write start the WAL
   * over: a short stall (the copy of that tail and a sync) once per that many frames. (A RESTART
   * checkpoint on the worker would hold the write lock and leave the app's writes waiting in
   * SQLite's busy handler, which sleeps 1, 2, 5, 10, 15… ms between tries: stalls far longer than
   * the checkpoint itself.)
   */
  restartFrames?: number;
  /** Told when the worker cannot run (the app's connection then checkpoints as SQLite does). */
  onError?: (error: Error) => void;
}

/** What the worker did so far, for tests and diagnostics. */
export interface CheckpointStats {
  /** Whether the worker checkpoints now (it has started and not failed). */
  running: boolean;
  /** Checkpoints that copied pages. */
  checkpoints: number;
  /** Pages copied into the database file. */
  pages: number;
  /** Checkpoints the app's connection ran because the WAL had grown past `restartFrames`. */
  restarts: number;
}

/** A running checkpointer: {@link stop} before the app's connection closes. */
export interface Checkpointer {
  stats(): Promise<CheckpointStats>;
  /** Ends the worker and gives checkpoints back to the app's connection; idempotent. */
  stop(): Promise<void>;
}

/**
 * The worker's code after its prologue (`sqliteWorker`), which opens the database file given with a
 * busy timeout of 0 (a checkpoint that finds the checkpoint lock taken, by another process's worker,
 * is simply tried again later). It checkpoints every `everyMs` while the WAL moves, backing off to
 * 10× that while it does not. Messages: `ready` once open, `failed` with a message if it cannot
 * open; it answers `stats` and ends on `stop`.
 */
const WORKER_BODY = String.raw`
const stats = { checkpoints: 0, pages: 0 };
let askedAt = 0;
let delay = workerData.everyMs;
let last = { log: -1, checkpointed: -1 };
let timer;
function tick() {
  try {
    const row = db.pragma('wal_checkpoint(PASSIVE)')[0];
    const moved = row.log !== last.log || row.checkpointed !== last.checkpointed;
    // Pages copied by this checkpoint: all it reports if the WAL started over since the last one.
    const copied = row.checkpointed - (row.log < last.log ? 0 : Math.max(0, last.checkpointed));
    if (copied > 0) {
      stats.checkpoints += 1;
      stats.pages += copied;
    }
    // The app's connection copies the tail itself (see restartFrames), once per restartFrames the
    // WAL grows by without starting over (a reader in another process can keep it from that).
    if (row.log < last.log) askedAt = 0;
    if (row.log >= askedAt + workerData.restartFrames) {
      askedAt = row.log;
      parentPort.postMessage({ type: 'restart' });
    }
    last = row;
    delay = moved ? workerData.everyMs : Math.min(delay * 2, workerData.everyMs * 10);
  } catch {
    // SQLITE_BUSY and the like: the next tick tries again.
  }
  timer = setTimeout(tick, delay);
}
parentPort.on('message', (message) => {
  if (message === 'stats') parentPort.postMessage({ type: 'stats', stats });
  if (message === 'stop') {
    clearTimeout(timer);
    db.close();
    process.exit(0);
  }
});
parentPort.postMessage({ type: 'ready' });
timer = setTimeout(tick, delay);
`;

/**
 * Moves `database`'s WAL checkpoints to a worker thread once the WAL file (`file`-wal) has reached
 * `fromBytes`: a store that writes little (the CLI, a short test) never starts one. While the worker
 * runs, the connection's `wal_autocheckpoint` is 0; if the worker cannot start or dies, it is set
 * back to SQLite's 1 000 pages and `onError` is told. The watch timer and the worker are unref'd:
 * neither keeps a process alive.
 */
export function startCheckpointer(
  database: Database.Database,
  file: string,
  options: CheckpointerOptions = {},
): Checkpointer {
  const fromBytes = options.fromBytes ?? CHECKPOINT_WORKER_FROM_BYTES;
  let worker: Worker | undefined;
  let running = false;
  /** Set by stop(): the worker's messages from then on change nothing. */
  let stopping: Promise<void> | undefined;
  const inline = () => {
    running = false;
    if (database.open) database.pragma(`wal_autocheckpoint = ${INLINE_AUTOCHECKPOINT_PAGES}`);
  };
  const fail = (error: Error) => {
    if (stopping !== undefined) return;
    inline();
    options.onError?.(error);
  };

  let restarts = 0;
  /** A checkpoint on the app's connection between two of its transactions (see `restartFrames`). */
  const checkpointHere = (tries: number) => {
    if (!running || !database.open) return;
    // Inside a transaction (one spanning awaits holds the connection): after it, a turn later.
    if (database.inTransaction) {
      if (tries < 1000) setImmediate(() => checkpointHere(tries + 1));
      return;
    }
    try {
      database.pragma('wal_checkpoint(PASSIVE)');
      restarts += 1;
    } catch {
      // Busy (another process checkpoints): the worker asks again if the WAL still grows.
    }
  };

  const start = () => {
    worker = sqliteWorker(file, ['busy_timeout = 0'], WORKER_BODY, {
      everyMs: options.everyMs ?? 100,
      restartFrames: options.restartFrames ?? 4096,
    });
    worker.unref();
    worker.on('message', (message: { type: string; message?: string }) => {
      if (message.type === 'ready' && stopping === undefined) {
        running = true;
        database.pragma('wal_autocheckpoint = 0');
        // A thread, its connection's descriptors and ~9 MiB, late in a long-lived process's life.
        announceResourceStep({
          what: "the store's WAL checkpoint worker started",
          signals: ['rss', 'fds', 'handles'],
        });
      }
      if (message.type === 'restart' && running) checkpointHere(0);
      if (message.type === 'failed')
        fail(new Error(`the WAL checkpoint worker cannot open ${file}: ${message.message}`));
    });
    worker.on('error', (error) => fail(error));
    worker.on('exit', () => {
      if (running) fail(new Error('the WAL checkpoint worker stopped'));
    });
  };

  const startNow = () => {
    try {
      start();
    } catch (error) {
      fail(error as Error);
    }
  };
  // From 0 bytes: at once. Else once the WAL is that big: a store that writes little never pays the
  // thread (~9 MiB); leak detection hears of the step when it comes (announceResourceStep).
  let watch: NodeJS.Timeout | undefined;
  if (fromBytes <= 0) startNow();
  else {
    watch = setInterval(() => {
      // No WAL yet reads as 0 bytes.
      const size = statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0;
      if (size < fromBytes) return;
      clearInterval(watch);
      startNow();
    }, WATCH_EVERY_MS);
    watch.unref();
  }

  return {
    stats() {
      const current = worker;
      if (current === undefined || !running)
        return Promise.resolve({ running, checkpoints: 0, pages: 0, restarts: 0 });
      return new Promise((resolve) => {
        const onMessage = (message: { type: string; stats?: Omit<CheckpointStats, 'running'> }) => {
          if (message.type !== 'stats') return;
          done();
          resolve({ running, ...message.stats!, restarts });
        };
        const onExit = () => {
          done();
          resolve({ running: false, checkpoints: 0, pages: 0, restarts: 0 });
        };
        const done = () => {
          current.off('message', onMessage);
          current.off('exit', onExit);
        };
        current.on('message', onMessage);
        current.once('exit', onExit);
        current.postMessage('stats');
      });
    },
    stop() {
      stopping ??= (async () => {
        clearInterval(watch);
        if (worker === undefined) return;
        inline();
        const exited = new Promise<void>((resolve) => worker!.once('exit', () => resolve()));
        worker.postMessage('stop');
        // A worker stuck in a checkpoint (a slow disk) is ended rather than waited for.
        const timer = setTimeout(() => void worker!.terminate(), 5_000);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

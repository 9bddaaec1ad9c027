// A worker thread with a better-sqlite3 connection of its own to the store's file: the WAL
// checkpointer's (checkpointer.ts) and the whole-table reader's (reader.ts).
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Starts `body` (CommonJS, run with `eval: true`: a file would need the app's TypeScript loader in
 * tests and a path of its own in each bundle) on a worker thread, after a prologue that opens `file`
 * as `db` (it must exist) and runs `pragmas` on it. If it cannot, the worker posts
 * `{ type: 'failed', message }` and ends. `body` sees `parentPort`, `workerData` (`data`) and `db`,
 * and posts `{ type: 'ready' }` once it is set up.
 */
export function sqliteWorker(
  file: string,
  pragmas: readonly string[],
  body: string,
  data: object = {},
): Worker {
  const source = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
let db;
try {
  db = new Database(workerData.file, { fileMustExist: true });
  for (const pragma of workerData.pragmas) db.pragma(pragma);
} catch (error) {
  parentPort.postMessage({ type: 'failed', message: String((error && error.message) || error) });
  process.exit(0);
}
${body}`;
  return new Worker(source, {
    eval: true,
    workerData: { ...data, driver: createRequire(import.meta.url).resolve('better-sqlite3'), file, pragmas },
    // Plain JavaScript: no loader flags (tsx), no V8 flags (a worker refuses some).
    execArgv: [],
    env: {},
    stdout: false,
    stderr: false,
  });
}

// The app's side of hang reports. A blocked event loop cannot answer anything, so a worker thread
// (its own event loop) listens on a private pipe from the supervisor, and on request pauses the main
// thread through an in-process inspector session and has it build its diagnostic report. No network
// port is opened: the inspector is reached with `Session.connectToMainThread()`, and the pipe is an
// anonymous one the supervisor created for this process alone.
import { fstatSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/**
 * The worker's code (CommonJS, run with `eval: true`: a worker file would need the app's TypeScript
 * loader, which worker threads do not inherit). Protocol on the pipe, one JSON object a line:
 * the supervisor sends `{"type":"report","id":n}`; the worker answers `{"id":n,"report":{…}}` (the
 * object of `process.report.getReport()` taken on the paused main thread, so its JavaScript stack is
 * the blocked one) or `{"id":n,"error":"…"}`. The request carries no code: the pipe can ask for a
 * report, nothing else. The main thread is resumed after the report is taken.
 */
const WORKER_SOURCE = String.raw`
'use strict';
const { Session } = require('node:inspector');
const net = require('node:net');
const { workerData } = require('node:worker_threads');
const channel = new net.Socket({ fd: workerData.fd, readable: true, writable: true });
channel.on('error', () => {});
channel.setEncoding('utf8');
let pending = '';
let busy = false;
channel.on('data', (text) => {
  pending += text;
  // Requests are a few bytes: a long line is not the supervisor's.
  if (pending.length > 65536) pending = '';
  for (let end = pending.indexOf('\n'); end !== -1; end = pending.indexOf('\n')) {
    const line = pending.slice(0, end);
    pending = pending.slice(end + 1);
    let request;
    try {
      request = JSON.parse(line);
    } catch {
      continue;
    }
    if (request && request.type === 'report' && Number.isSafeInteger(request.id)) capture(request.id);
  }
});
function capture(id) {
  if (busy) return channel.write(JSON.stringify({ id, error: 'a report is already being taken' }) + '\n');
  busy = true;
  const session = new Session();
  let done = false;
  const reply = (text) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    channel.write(text + '\n');
    try {
      session.post('Debugger.resume', () => {
        session.disconnect();
        busy = false;
      });
    } catch {
      busy = false;
    }
  };
  const fail = (error) => reply(JSON.stringify({ id, error: String((error && error.message) || error) }));
  // A loop blocked in native code never reaches a pause point: give up rather than stay paused later.
  const timer = setTimeout(() => fail('the main thread did not pause within 10 s'), 10000);
  try {
    session.connectToMainThread();
  } catch (error) {
    return fail(error);
  }
  session.once('Debugger.paused', ({ params }) => {
    const frame = params.callFrames[0];
    if (frame === undefined) return fail('paused without a call frame');
    session.post(
      'Debugger.evaluateOnCallFrame',
      {
        callFrameId: frame.callFrameId,
        expression: 'JSON.stringify(globalThis.process.report.getReport())',
        returnByValue: true,
        silent: true,
      },
      (error, result) => {
        if (error) return fail(error);
        const value = result.result && result.result.value;
        if (result.exceptionDetails || typeof value !== 'string') return fail('getReport() failed');
        reply('{"id":' + id + ',"report":' + value + '}');
      },
    );
  });
  session.post('Debugger.enable', (error) => {
    if (error) return fail(error);
    session.post('Debugger.pause', (pauseError) => pauseError && fail(pauseError));
  });
}
`;

let started: Worker | undefined;

/**
 * Starts the report worker on the pipe `fd` (given by the supervisor as
 * `BULWARK_SUPERVISOR_REPORT_FD`), once per process. Returns undefined, starting nothing, when `fd`
 * is not a pipe or socket (not started by a supervisor that offers reports). The worker is unref'd
 * (it never keeps the process alive) and costs one idle thread; {@link stopReportWorker} ends it.
 */
export function startReportWorker(fd: number): Worker | undefined {
  if (started !== undefined) return started;
  try {
    const stat = fstatSync(fd);
    if (!stat.isSocket() && !stat.isFIFO()) return undefined;
  } catch {
    return undefined;
  }
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { fd },
    // Plain JavaScript: no loader flags (tsx), no V8 flags (a worker refuses some, e.g. --expose-gc).
    execArgv: [],
    env: {},
    stdout: false,
    stderr: false,
  });
  worker.unref();
  // A worker that fails leaves the app without hang reports, never without its main thread.
  worker.on('error', () => undefined);
  worker.on('exit', () => {
    if (started === worker) started = undefined;
  });
  started = worker;
  return worker;
}

/** Ends the report worker, if one runs (the app no longer offers reports). */
export function stopReportWorker(): void {
  void started?.terminate();
  started = undefined;
}

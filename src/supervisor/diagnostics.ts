import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';

interface InspectorTarget {
  webSocketDebuggerUrl?: string;
}

interface InspectorMessage {
  id?: number;
  method?: string;
  params?: { callFrames?: { callFrameId: string }[] };
  result?: { result?: { value?: unknown }; exceptionDetails?: unknown };
  error?: { message?: string };
}

/**
 * Writes a Node diagnostic report of a process whose event loop is blocked, which neither
 * `--report-on-signal` nor an IPC request can do (both need the loop). SIGUSR1 opens the inspector
 * on `inspectPort` (its own thread, so it answers while the loop is blocked); `Debugger.pause`
 * interrupts the running JavaScript, and `process.report.writeReport()` evaluated on the paused
 * frame writes the report with the blocked stack. The process is left paused: the caller kills it.
 * Resolves with the report's path; rejects after `timeoutMs`.
 */
export async function captureHangReport(opts: {
  pid: number;
  inspectPort: number;
  dir: string;
  timeoutMs: number;
}): Promise<string> {
  const deadline = Date.now() + opts.timeoutMs;
  await mkdir(opts.dir, { recursive: true });
  const file = path.join(opts.dir, `hang-${opts.pid}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  process.kill(opts.pid, 'SIGUSR1');
  let url: string | undefined;
  while (url === undefined) {
    if (Date.now() > deadline) throw new Error(`the inspector on port ${opts.inspectPort} did not open`);
    try {
      const response = await fetch(`http://127.0.0.1:${opts.inspectPort}/json/list`, {
        signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())),
      });
      const targets = (await response.json()) as InspectorTarget[];
      url = targets[0]?.webSocketDebuggerUrl;
    } catch {
      await sleep(20);
    }
  }
  const socket = new WebSocket(url);
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('the report was not written in time')),
        deadline - Date.now(),
      );
      let id = 0;
      const send = (method: string, params: Record<string, unknown> = {}) => {
        socket.send(JSON.stringify({ id: ++id, method, params }));
        return id;
      };
      let reportCall = -1;
      socket.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.on('open', () => {
        send('Debugger.enable');
        send('Debugger.pause');
      });
      socket.on('message', (data: Buffer) => {
        const message = JSON.parse(data.toString()) as InspectorMessage;
        if (message.method === 'Debugger.paused') {
          const frame = message.params?.callFrames?.[0];
          if (frame === undefined) return;
          reportCall = send('Debugger.evaluateOnCallFrame', {
            callFrameId: frame.callFrameId,
            expression: `process.report.writeReport(${JSON.stringify(file)})`,
          });
        } else if (message.id === reportCall) {
          clearTimeout(timer);
          if (message.error !== undefined || message.result?.exceptionDetails !== undefined)
            reject(new Error(`writeReport failed: ${JSON.stringify(message.error ?? message.result)}`));
          else resolve(file);
        }
      });
    });
  } finally {
    socket.terminate();
  }
}

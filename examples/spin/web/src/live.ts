// The user's live stream (GET /api/events, Server-Sent Events) read with fetch, since EventSource
// cannot send the bearer token. After a drop it reconnects with Last-Event-ID, so a match made while
// the connection was down arrives once it is back, waiting 1 s, then twice as long each time up to
// 30 s, or until the browser says it is back online; a 401 ends it (the token is no longer valid).

import { noteAnswer } from './network.js';

export interface Live {
  stop(): void;
}

export interface LiveHandlers {
  onEvent(type: string, data: unknown): void;
  /** Connected (true) or dropped and retrying (false). */
  onState(connected: boolean): void;
  onUnauthorized(): void;
}

export function follow(token: string, handlers: LiveHandlers): Live {
  const controller = new AbortController();
  let lastId: string | undefined;
  let delay = 1000;
  const run = async () => {
    while (!controller.signal.aborted) {
      try {
        const res = await fetch('/api/events', {
          headers: {
            authorization: `Bearer ${token}`,
            ...(lastId === undefined ? {} : { 'last-event-id': lastId }),
          },
          signal: controller.signal,
        }).catch((error: unknown) => {
          if (!controller.signal.aborted) noteAnswer(false);
          throw error;
        });
        noteAnswer(true);
        if (res.status === 401) {
          handlers.onUnauthorized();
          return;
        }
        if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status}`);
        handlers.onState(true);
        delay = 1000;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let type = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('id: ')) lastId = line.slice(4);
              else if (line.startsWith('event: ')) type = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (data !== '') handlers.onEvent(type, JSON.parse(data) as unknown);
          }
        }
      } catch {
        if (controller.signal.aborted) return;
      }
      handlers.onState(false);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          window.removeEventListener('online', wake);
          resolve();
        };
        const timer = setTimeout(wake, delay);
        window.addEventListener('online', wake);
      });
      delay = Math.min(30_000, delay * 2);
    }
  };
  void run();
  return { stop: () => controller.abort() };
}

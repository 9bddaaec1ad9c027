// One Server-Sent Events stream per tab (`/admin/api/events`), shared by every page: a page
// subscribes to the topics it shows and reloads its data when one changes. The server coalesces
// each topic to at most one event a second; EventSource reconnects by itself after a drop.
import { useEffect, useRef } from 'preact/hooks';

export type Topic =
  'flags' | 'dependencies' | 'alerts' | 'queues' | 'audit' | 'instances' | 'config' | 'errors';

type Listener = (topic: Topic | 'resync', data: unknown) => void;

const listeners = new Set<Listener>();
let source: EventSource | undefined;
const TOPICS: (Topic | 'resync')[] = [
  'flags',
  'dependencies',
  'alerts',
  'queues',
  'audit',
  'instances',
  'config',
  'errors',
  'resync',
];

function open() {
  source = new EventSource('/admin/api/events');
  for (const topic of TOPICS) {
    source.addEventListener(topic, (event) => {
      let data: unknown;
      try {
        data = JSON.parse((event as MessageEvent<string>).data);
      } catch {
        data = undefined;
      }
      for (const listener of listeners) listener(topic, data);
    });
  }
}

/** Calls `onChange` when any of `topics` changes (or the stream asks every page to resync). */
export function useLive(topics: Topic[], onChange: (data: unknown) => void): void {
  const ref = useRef(onChange);
  ref.current = onChange;
  const key = topics.join(',');
  useEffect(() => {
    const listener: Listener = (topic, data) => {
      if (topic === 'resync' || topics.includes(topic)) ref.current(data);
    };
    listeners.add(listener);
    if (source === undefined) open();
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0) {
        source?.close();
        source = undefined;
      }
    };
  }, [key]);
}

/** Closes the stream (sign-out). */
export function closeLive(): void {
  source?.close();
  source = undefined;
}

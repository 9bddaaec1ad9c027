import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * Calls `onChange` (debounced) when `file` may have changed: `fs.watch` on its directory (so a
 * rename over the file is seen), plus a periodic stat of size, mtime and inode, because `fs.watch`
 * can miss events (network file systems, editors that replace files, overflowing queues). A
 * spurious call is harmless: the caller compares the content.
 */
export class FileWatcher {
  private readonly file: string;
  private readonly debounceMs: number;
  private readonly onChange: () => void;
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private lastStat = '';
  private closed = false;

  constructor(file: string, opts: { debounceMs: number; pollMs: number }, onChange: () => void) {
    this.file = file;
    this.debounceMs = opts.debounceMs;
    this.onChange = onChange;
    const base = path.basename(file);
    try {
      this.watcher = watch(path.dirname(file), (_event, filename) => {
        if (filename === null || filename === base) this.schedule();
      });
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      // No fs.watch here (some file systems): the poller alone still sees every change.
    }
    void this.statKey().then((key) => {
      this.lastStat = key;
    });
    this.poller = setInterval(() => {
      void this.statKey().then((key) => {
        if (key === this.lastStat) return;
        this.lastStat = key;
        this.schedule();
      });
    }, opts.pollMs);
    this.poller.unref();
  }

  /** Stops watching; no `onChange` call happens afterwards. */
  close(): void {
    this.closed = true;
    this.watcher?.close();
    clearInterval(this.poller);
    clearTimeout(this.debounce);
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      if (!this.closed) this.onChange();
    }, this.debounceMs);
    this.debounce.unref();
  }

  private async statKey(): Promise<string> {
    try {
      const s = await stat(this.file, { bigint: true });
      return `${s.ino}:${s.size}:${s.mtimeNs}`;
    } catch {
      return 'missing';
    }
  }
}

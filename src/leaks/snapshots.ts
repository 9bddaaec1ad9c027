import { createWriteStream } from 'node:fs';
import { chmod, mkdir, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import v8 from 'node:v8';
import { bulwarkError } from '../errors/index.js';

/** A heap snapshot on disk. */
export interface HeapSnapshotInfo {
  /** File name in the snapshot directory (`heap-<time>-<pid>.heapsnapshot`). */
  name: string;
  bytes: number;
  /** When it was written, ms since the epoch. */
  at: number;
}

/** Options of {@link HeapSnapshots}. */
export interface HeapSnapshotsOptions {
  /** Where snapshots go (`<dataDir>/heap`): created 0700, each file 0600. */
  dir: string;
  /** Snapshots kept; the oldest are deleted before a new one is written (default 3). */
  max?: number | undefined;
  /** Refused while the heap in use is above this, bytes (default 1 GiB). */
  maxHeapBytes?: number | undefined;
  now?: () => number;
  /** Heap in use now, bytes (default V8's). */
  heapUsed?: () => number;
}

const NAME = /^heap-[0-9TZ-]+-\d+\.heapsnapshot$/;

/**
 * Heap snapshots on demand, bounded: one at a time (`BWK_ERR_LEAKS_SNAPSHOT_BUSY` while one is
 * written), refused when the heap is above `maxHeapBytes` or the disk has less free space than twice
 * the heap (`BWK_ERR_LEAKS_SNAPSHOT_REFUSED`), at most `max` kept. Taking one pauses the process
 * while V8 walks the heap (about a second per few hundred MiB) and needs memory of the order of the
 * heap again: it is an operator's tool, not something to run on a schedule.
 */
export class HeapSnapshots {
  readonly dir: string;
  readonly #max: number;
  readonly #maxHeapBytes: number;
  readonly #now: () => number;
  readonly #heapUsed: () => number;
  #busy = false;

  constructor(opts: HeapSnapshotsOptions) {
    this.dir = opts.dir;
    this.#max = Math.max(1, opts.max ?? 3);
    this.#maxHeapBytes = opts.maxHeapBytes ?? 1_073_741_824;
    this.#now = opts.now ?? Date.now;
    this.#heapUsed = opts.heapUsed ?? (() => v8.getHeapStatistics().used_heap_size);
  }

  /** True while a snapshot is being written. */
  get busy(): boolean {
    return this.#busy;
  }

  /**
   * Writes a snapshot of this process's heap; resolves with it once it is complete on disk (written
   * under a temporary name, then renamed). Rejects with the codes above, or the file system's error.
   */
  async take(): Promise<HeapSnapshotInfo> {
    if (this.#busy) throw bulwarkError('BWK_ERR_LEAKS_SNAPSHOT_BUSY', {});
    this.#busy = true;
    try {
      const heap = this.#heapUsed();
      if (heap > this.#maxHeapBytes)
        throw bulwarkError('BWK_ERR_LEAKS_SNAPSHOT_REFUSED', {
          reason: `the heap in use (${mib(heap)}) is above the limit of ${mib(this.#maxHeapBytes)}`,
        });
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await chmod(this.dir, 0o700);
      const fs = await statfs(this.dir);
      const free = fs.bavail * fs.bsize;
      if (free < 2 * heap)
        throw bulwarkError('BWK_ERR_LEAKS_SNAPSHOT_REFUSED', {
          reason: `the disk has ${mib(free)} free, less than twice the heap in use (${mib(heap)})`,
        });
      const kept = await this.list();
      for (const old of kept.slice(0, Math.max(0, kept.length - this.#max + 1)))
        await rm(path.join(this.dir, old.name), { force: true });
      const at = this.#now();
      const name = `heap-${new Date(at).toISOString().replace(/[:.]/g, '-')}-${process.pid}.heapsnapshot`;
      const file = path.join(this.dir, name);
      const partial = `${file}.partial`;
      try {
        await pipeline(v8.getHeapSnapshot(), createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
        await rename(partial, file);
      } catch (error) {
        await rm(partial, { force: true });
        throw error;
      }
      return { name, bytes: (await stat(file)).size, at };
    } finally {
      this.#busy = false;
    }
  }

  /** The snapshots on disk, oldest first. */
  async list(): Promise<HeapSnapshotInfo[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const infos = await Promise.all(
      names
        .filter((name) => NAME.test(name))
        .map(async (name) => {
          const info = await stat(path.join(this.dir, name)).catch(() => undefined);
          return info === undefined ? undefined : { name, bytes: info.size, at: info.mtimeMs };
        }),
    );
    return infos
      .filter((info): info is HeapSnapshotInfo => info !== undefined)
      .sort((a, b) => a.at - b.at || (a.name < b.name ? -1 : 1));
  }

  /** The path of snapshot `name`; `BWK_ERR_LEAKS_SNAPSHOT_NOT_FOUND` when there is none by that name. */
  async file(name: string): Promise<{ path: string; bytes: number }> {
    const file = path.join(this.dir, name);
    const info = NAME.test(name) ? await stat(file).catch(() => undefined) : undefined;
    if (info === undefined) throw bulwarkError('BWK_ERR_LEAKS_SNAPSHOT_NOT_FOUND', { name });
    return { path: file, bytes: info.size };
  }
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 1_048_576)} MiB`;
}

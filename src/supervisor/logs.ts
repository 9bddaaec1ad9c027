import {
  closeSync,
  fchmodSync,
  fstatSync,
  mkdirSync,
  openSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { bulwarkError } from '../errors/index.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../store/permissions.js';

/** Options of {@link RotatingLog}. */
export interface RotatingLogOptions {
  /**
   * The live log file, e.g. `/var/log/app/app.log`; its directory is created (mode 0700) if
   * missing. Every file is mode 0600, whatever the umask (an existing one is made so on open).
   */
  file: string;
  /** Size in bytes a file may reach before the next write rotates it, e.g. 10 MiB. */
  maxBytes: number;
  /** Rotated files kept (`app.log.1` … `app.log.<keep>`), e.g. 5; 0 keeps none. */
  keep: number;
  /**
   * Told about the first failure of an outage (disk full, directory unwritable, ...); output is
   * dropped until the file can be written again, and the next failure after that is told again. A
   * throwing callback is ignored.
   */
  onError?: (error: unknown) => void;
  /** After a failure, how long output is dropped before the file is reopened; default 5 000 ms. */
  retryMs?: number;
  /**
   * How often a write checks that `file` still names the open file, in ms; default 1 000. A file
   * deleted or moved away (its directory removed, an external logrotate) is then reopened, so output
   * goes to the deleted file for at most this long.
   */
  checkMs?: number;
  /** Clock in ms (tests drive it); default `Date.now`. */
  now?: () => number;
}

/**
 * Appends an app's output to a log file, rotating by size: `app.log` → `app.log.1` → … →
 * `app.log.<keep>`, the oldest deleted.
 *
 * A write that would take the file past `maxBytes` first rotates it, so every file holds at most
 * `maxBytes`, except one that received a single chunk larger than that (it goes whole into a fresh
 * file). An existing file is appended to and its size counted. Writes are synchronous (`writeSync`,
 * like pino's default destination): nothing is buffered in memory, order is the order of the calls
 * and everything written is in the kernel's page cache when `write()` returns, so a crash of the
 * supervisor loses nothing already written.
 *
 * No method throws once constructed: a failure is reported through `onError` and the output dropped
 * (counted in {@link RotatingLog.droppedBytes}) until a reopen, tried at most every `retryMs`,
 * succeeds. A file deleted or moved away, or its whole directory removed, is noticed within `checkMs`
 * and recreated (directory included); until then output goes to the deleted file.
 */
export class RotatingLog {
  readonly file: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  readonly #onError: ((error: unknown) => void) | undefined;
  readonly #retryMs: number;
  readonly #now: () => number;
  #fd: number | undefined;
  #size = 0;
  #failing = false;
  #retryAt = 0;
  readonly #checkMs: number;
  #checkAt = 0;
  #dropped = 0;
  #closed = false;

  /**
   * Opens nothing yet: the file is opened (and its directory created) by the first write. Throws
   * `BWK_ERR_SUPERVISOR_OPTIONS` for a `maxBytes` or `keep` that is not a usable integer.
   */
  constructor(opts: RotatingLogOptions) {
    const problems: string[] = [];
    if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes <= 0)
      problems.push(`maxBytes must be a positive integer (got ${opts.maxBytes})`);
    if (!Number.isSafeInteger(opts.keep) || opts.keep < 0)
      problems.push(`keep must be an integer ≥ 0 (got ${opts.keep})`);
    if (opts.file === '') problems.push('file must not be empty');
    if (problems.length > 0)
      throw bulwarkError('BWK_ERR_SUPERVISOR_OPTIONS', { summary: problems.join('; ') });
    this.file = path.resolve(opts.file);
    this.#maxBytes = opts.maxBytes;
    this.#keep = opts.keep;
    this.#onError = opts.onError;
    this.#retryMs = opts.retryMs ?? 5000;
    this.#checkMs = opts.checkMs ?? 1000;
    this.#now = opts.now ?? Date.now;
  }

  /** Bytes in the live file as far as this writer knows (what it found on open plus what it wrote). */
  get size(): number {
    return this.#size;
  }

  /** Bytes dropped because the file could not be written. */
  get droppedBytes(): number {
    return this.#dropped;
  }

  /** Appends `chunk` (a string is written as UTF-8), rotating first if it would not fit. Never throws. */
  write(chunk: Buffer | string): void {
    if (this.#closed) return;
    const data = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (data.length === 0) return;
    let written = 0;
    try {
      if (this.#fd === undefined && this.#failing && this.#now() < this.#retryAt) {
        this.#dropped += data.length;
        return;
      }
      let fd = this.#fd ?? this.#open();
      if (this.#now() >= this.#checkAt) {
        this.#checkAt = this.#now() + this.#checkMs;
        if (!this.#stillNamed(fd)) fd = this.#open();
      }
      if (this.#size > 0 && this.#size + data.length > this.#maxBytes) fd = this.#rotate();
      while (written < data.length) written += writeSync(fd, data, written, data.length - written);
      this.#size += written;
      this.#failing = false;
    } catch (error) {
      this.#size += written;
      this.#dropped += data.length - written;
      this.#fail(error);
    }
  }

  /** Writes are synchronous, so nothing is ever pending: kept so callers need not rely on that. */
  flush(): void {}

  /** Closes the file; later writes are dropped silently. Never throws. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#release();
  }

  /** False once `file` no longer names the open file (deleted, its directory removed, moved away). */
  #stillNamed(fd: number): boolean {
    const open = fstatSync(fd);
    try {
      const named = statSync(this.file);
      return named.ino === open.ino && named.dev === open.dev;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }

  #open(): number {
    this.#release();
    mkdirSync(path.dirname(this.file), { recursive: true, mode: PRIVATE_DIR_MODE });
    const fd = openSync(this.file, 'a', PRIVATE_FILE_MODE);
    try {
      const stat = fstatSync(fd);
      // An app's output is for its user alone; a file left by an earlier version may be wider.
      if ((stat.mode & 0o077) !== 0) fchmodSync(fd, PRIVATE_FILE_MODE);
      this.#size = stat.size;
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    this.#fd = fd;
    this.#checkAt = this.#now() + this.#checkMs;
    return fd;
  }

  /** Shifts every rotated file up by one (the oldest deleted) and opens an empty live file. */
  #rotate(): number {
    this.#release();
    if (this.#keep === 0) {
      ignoreMissing(() => unlinkSync(this.file));
    } else {
      ignoreMissing(() => unlinkSync(`${this.file}.${this.#keep}`));
      for (let i = this.#keep - 1; i >= 1; i -= 1)
        ignoreMissing(() => renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`));
      ignoreMissing(() => renameSync(this.file, `${this.file}.1`));
    }
    return this.#open();
  }

  #fail(error: unknown): void {
    this.#release();
    this.#retryAt = this.#now() + this.#retryMs;
    if (this.#failing) return;
    this.#failing = true;
    try {
      this.#onError?.(error);
    } catch {
      // The callback's own failure must not reach the app's output path.
    }
  }

  #release(): void {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd === undefined) return;
    try {
      closeSync(fd);
    } catch {
      // Nothing left to do with a descriptor that cannot be closed.
    }
  }
}

const NEWLINE = 0x0a;

function ignoreMissing(action: () => void): void {
  try {
    action();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/**
 * The last output of a process, bounded in bytes, for crash forensics (the lines printed before it
 * died). `push()` keeps the chunks it is given (no copy; callers must not reuse the buffers) and drops
 * from the front past `maxBytes`, so it costs an array push and, now and then, a shift. Memory held:
 * at most `maxBytes` of output, in buffers retaining at most `2 × maxBytes` (a chunk larger than
 * `maxBytes` is cut to its tail and copied).
 */
export class OutputRing {
  readonly #maxBytes: number;
  #chunks: Buffer[] = [];
  #head = 0;
  #bytes = 0;
  /** The held output starts mid-line (its first line was cut when the front was dropped). */
  #cut = false;

  /** `maxBytes`: the most output held, e.g. 64 KiB; not a positive integer → `BWK_ERR_SUPERVISOR_OPTIONS`. */
  constructor(maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0)
      throw bulwarkError('BWK_ERR_SUPERVISOR_OPTIONS', {
        summary: `the output ring's maxBytes must be a positive integer (got ${maxBytes})`,
      });
    this.#maxBytes = maxBytes;
  }

  /** Bytes of output held (≤ `maxBytes`). */
  get size(): number {
    return this.#bytes;
  }

  /** Keeps `chunk`, dropping the oldest output past `maxBytes`. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (chunk.length >= this.#maxBytes) {
      const excess = chunk.length - this.#maxBytes;
      if (excess > 0) this.#cut = chunk[excess - 1] !== NEWLINE;
      else if (this.#bytes > 0) this.#cut = this.#lastByte() !== NEWLINE;
      this.#chunks = [excess > 0 ? Buffer.from(chunk.subarray(excess)) : chunk];
      this.#head = 0;
      this.#bytes = this.#maxBytes;
      return;
    }
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    while (this.#bytes > this.#maxBytes) {
      const first = this.#chunks[this.#head] as Buffer;
      const excess = this.#bytes - this.#maxBytes;
      if (first.length <= excess) {
        this.#cut = first[first.length - 1] !== NEWLINE;
        this.#head += 1;
        this.#bytes -= first.length;
      } else {
        this.#cut = first[excess - 1] !== NEWLINE;
        this.#chunks[this.#head] = first.subarray(excess);
        this.#bytes -= excess;
      }
    }
    // Compact the consumed front now and then rather than shifting the array on every drop.
    if (this.#head > 64 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }

  /**
   * The last `n` lines, decoded as UTF-8, without their `\n` (or `\r\n`): the last one may be partial
   * (no newline yet), none is the empty line after a final newline, and a line whose start was
   * dropped at the front is left out.
   */
  lines(n: number): string[] {
    if (n <= 0 || this.#bytes === 0) return [];
    let data = Buffer.concat(this.#chunks.slice(this.#head), this.#bytes);
    if (this.#cut) {
      // 0x0a never occurs inside a multi-byte UTF-8 sequence, so this also drops a cut character.
      const newline = data.indexOf(NEWLINE);
      if (newline === -1) return [];
      data = data.subarray(newline + 1);
    }
    const lines = data.toString('utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-n).map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  }

  #lastByte(): number | undefined {
    const last = this.#chunks[this.#chunks.length - 1];
    return last?.[last.length - 1];
  }

  /** Forgets everything held (e.g. when the process is restarted). */
  clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#bytes = 0;
    this.#cut = false;
  }
}

import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isBulwarkError } from '../src/errors/index.js';
import { OutputRing, RotatingLog } from '../src/supervisor/logs.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-logs-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Numbered lines `line <i>\n`, each padded to `width` bytes including the newline. */
function line(i: number, width = 100): string {
  return `line ${String(i).padStart(8, '0')} `.padEnd(width - 1, 'x') + '\n';
}

/** The files of the log, oldest first: app.log.<keep> … app.log.1, app.log. */
function logFiles(dir: string): string[] {
  const rank = (name: string) => Number(name.split('.')[2] ?? 0);
  return readdirSync(dir)
    .filter((name) => name.startsWith('app.log'))
    .sort((a, b) => rank(b) - rank(a));
}

/** Line numbers in `text`, in order. */
function numbers(text: string): number[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => Number(l.slice(5, 13)));
}

describe('RotatingLog', () => {
  it('bounds the number and size of files while 5 MB go through, keeping the newest', () => {
    const dir = tempDir();
    const log = new RotatingLog({ file: path.join(dir, 'app.log'), maxBytes: 100_000, keep: 3 });
    const total = 50_000; // × 100 bytes = 5 MB
    // Chunks of 1–37 lines, so chunk and file boundaries rarely line up.
    for (let i = 0; i < total;) {
      const n = Math.min(total - i, 1 + (i % 37));
      let chunk = '';
      for (let k = 0; k < n; k += 1) chunk += line(i + k);
      log.write(i % 2 === 0 ? chunk : Buffer.from(chunk));
      i += n;
    }
    log.close();

    const files = logFiles(dir);
    expect(files).toEqual(['app.log.3', 'app.log.2', 'app.log.1', 'app.log']);
    for (const name of files) expect(statSync(path.join(dir, name)).size).toBeLessThanOrEqual(100_000);
    // Oldest first, the files hold one unbroken run of lines ending with the last one written.
    const seen = files.flatMap((name) => numbers(readFileSync(path.join(dir, name), 'utf8')));
    expect(seen.at(-1)).toBe(total - 1);
    expect(seen).toEqual(seen.map((_, k) => (seen[0] ?? 0) + k));
    expect(seen.length).toBeGreaterThan(3 * 900); // the three rotated files are nearly full
    expect(numbers(readFileSync(path.join(dir, 'app.log'), 'utf8')).at(-1)).toBe(total - 1);
  });

  it('rotates before a write would pass maxBytes, never splitting a write', () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.log');
    const log = new RotatingLog({ file, maxBytes: 250, keep: 2 });
    log.write(line(0)); // 100
    log.write(line(1)); // 200
    log.write(line(2)); // would be 300: rotates first
    expect(readFileSync(`${file}.1`, 'utf8')).toBe(line(0) + line(1));
    expect(readFileSync(file, 'utf8')).toBe(line(2));
    expect(log.size).toBe(100);
    log.close();
  });

  it('puts a chunk larger than maxBytes whole into a fresh file', () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.log');
    const log = new RotatingLog({ file, maxBytes: 150, keep: 2 });
    log.write(line(0));
    const big = line(1) + line(2) + line(3);
    log.write(big);
    log.write(line(4));
    log.close();
    expect(readFileSync(`${file}.2`, 'utf8')).toBe(line(0));
    expect(readFileSync(`${file}.1`, 'utf8')).toBe(big);
    expect(readFileSync(file, 'utf8')).toBe(line(4));
  });

  it('keep: 0 keeps no rotated file', () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.log');
    const log = new RotatingLog({ file, maxBytes: 150, keep: 0 });
    for (let i = 0; i < 5; i += 1) log.write(line(i));
    log.close();
    expect(logFiles(dir)).toEqual(['app.log']);
    expect(readFileSync(file, 'utf8')).toBe(line(4));
  });

  it('appends to an existing file on open, counting its size', () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.log');
    const first = new RotatingLog({ file, maxBytes: 350, keep: 2 });
    first.write(line(0));
    first.write(line(1));
    first.close();
    first.write(line(99)); // after close: dropped
    const second = new RotatingLog({ file, maxBytes: 350, keep: 2 });
    second.write(line(2));
    expect(second.size).toBe(300);
    expect(readFileSync(file, 'utf8')).toBe(line(0) + line(1) + line(2));
    second.write(line(3)); // 400 > 350: rotates
    second.close();
    expect(readFileSync(`${file}.1`, 'utf8')).toBe(line(0) + line(1) + line(2));
    expect(readFileSync(file, 'utf8')).toBe(line(3));
  });

  it('creates missing directories and writes UTF-8 strings', () => {
    const dir = tempDir();
    const file = path.join(dir, 'a', 'b', 'app.log');
    const log = new RotatingLog({ file, maxBytes: 1000, keep: 1 });
    log.write('héllo → wörld\n');
    log.flush();
    log.close();
    expect(readFileSync(file, 'utf8')).toBe('héllo → wörld\n');
  });

  it('files 0600 (rotated ones too) and new directories 0700, whatever the umask; a wider file is narrowed', () => {
    const dir = tempDir();
    const file = path.join(dir, 'logs', 'app.log');
    const previous = process.umask(0);
    try {
      const log = new RotatingLog({ file, maxBytes: 150, keep: 2 });
      for (let i = 0; i < 4; i += 1) log.write(line(i));
      log.close();
    } finally {
      process.umask(previous);
    }
    const mode = (name: string) => (statSync(name).mode & 0o777).toString(8);
    expect(mode(path.dirname(file))).toBe('700');
    expect([file, `${file}.1`, `${file}.2`].map(mode)).toEqual(['600', '600', '600']);
    // Left by an earlier version: opened again, it is made private.
    chmodSync(file, 0o644);
    const again = new RotatingLog({ file, maxBytes: 1000, keep: 2 });
    again.write(line(9));
    again.close();
    expect(mode(file)).toBe('600');
  });

  it('rejects unusable options with BWK_ERR_SUPERVISOR_OPTIONS', () => {
    for (const opts of [
      { file: 'x.log', maxBytes: 0, keep: 1 },
      { file: 'x.log', maxBytes: 10, keep: -1 },
      { file: 'x.log', maxBytes: 1.5, keep: 1 },
    ]) {
      let caught: unknown;
      try {
        new RotatingLog(opts);
      } catch (error) {
        caught = error;
      }
      expect(isBulwarkError(caught, 'BWK_ERR_SUPERVISOR_OPTIONS')).toBe(true);
    }
  });

  it('survives its directory being removed mid-run: no throw, recreated within checkMs', () => {
    const dir = tempDir();
    const logDir = path.join(dir, 'logs');
    const file = path.join(logDir, 'app.log');
    let now = 0;
    const errors: unknown[] = [];
    const log = new RotatingLog({
      file,
      maxBytes: 1000,
      keep: 2,
      checkMs: 1000,
      now: () => now,
      onError: (error) => errors.push(error),
    });
    for (let i = 0; i < 15; i += 1) log.write(line(i)); // rotates: app.log.1 and app.log exist
    rmSync(logDir, { recursive: true });
    expect(() => log.write(line(15))).not.toThrow(); // goes to the deleted file
    now = 1000;
    log.write(line(16)); // noticed: the directory and file are recreated
    log.write(line(17));
    log.close();
    expect(readFileSync(file, 'utf8')).toBe(line(16) + line(17));
    expect(errors).toEqual([]);
  });

  it('reports a failure once, drops output (no throw), and resumes after retryMs', () => {
    const dir = tempDir();
    const logDir = path.join(dir, 'logs');
    const file = path.join(logDir, 'app.log');
    let now = 0;
    const errors: unknown[] = [];
    const log = new RotatingLog({
      file,
      maxBytes: 250,
      keep: 1,
      retryMs: 5000,
      now: () => now,
      onError: (error) => {
        errors.push(error);
        throw new Error('a throwing callback is ignored');
      },
    });
    log.write(line(0));
    log.write(line(1));
    // The directory is replaced by a plain file: the rotation cannot reopen anything.
    rmSync(logDir, { recursive: true });
    writeFileSync(logDir, 'not a directory');
    for (let i = 2; i < 6; i += 1) expect(() => log.write(line(i))).not.toThrow();
    now = 6000;
    log.write(line(6)); // the retry fails too: still one report
    expect(errors).toHaveLength(1);
    expect((errors[0] as NodeJS.ErrnoException).code).toMatch(/^(ENOTDIR|EEXIST)$/);
    expect(log.droppedBytes).toBe(500);

    rmSync(logDir);
    log.write(line(7)); // before retryMs: dropped
    now = 12_000;
    log.write(line(8));
    expect(readFileSync(file, 'utf8')).toBe(line(8));
    expect(log.droppedBytes).toBe(600);
    // A later outage is reported again.
    rmSync(logDir, { recursive: true });
    writeFileSync(logDir, 'not a directory');
    log.write(line(9));
    log.write(line(10));
    log.write(line(11)); // rotation fails
    expect(errors).toHaveLength(2);
    log.close();
  });

  it.skipIf(!existsSync('/dev/full'))('a full disk (/dev/full) is reported once, never thrown', () => {
    const errors: unknown[] = [];
    const log = new RotatingLog({
      file: '/dev/full',
      maxBytes: 1 << 30,
      keep: 1,
      retryMs: 0,
      onError: (error) => errors.push(error),
    });
    for (let i = 0; i < 10; i += 1) expect(() => log.write(line(i))).not.toThrow();
    expect(errors).toHaveLength(1);
    expect((errors[0] as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(log.droppedBytes).toBe(1000);
    log.close();
  });
});

describe('OutputRing', () => {
  it('returns the last n lines, the last one possibly partial, no trailing empty line', () => {
    const ring = new OutputRing(1024);
    ring.push(Buffer.from('one\ntwo\nthr'));
    ring.push(Buffer.from('ee\r\nfour'));
    expect(ring.lines(10)).toEqual(['one', 'two', 'three', 'four']);
    expect(ring.lines(2)).toEqual(['three', 'four']);
    ring.push(Buffer.from('\n'));
    expect(ring.lines(1)).toEqual(['four']);
    expect(ring.lines(0)).toEqual([]);
    ring.clear();
    expect(ring.lines(5)).toEqual([]);
    expect(ring.size).toBe(0);
  });

  it('stays within maxBytes and keeps the right lines across chunk boundaries', () => {
    const ring = new OutputRing(1000);
    let all = '';
    for (let i = 0; i < 2000; i += 1) {
      // Chunks of 1–60 bytes cutting lines anywhere.
      const text = `${i}:` + 'y'.repeat(i % 23) + (i % 3 === 0 ? '\n' : '');
      const size = 1 + (i % 60);
      all += text;
      for (let at = 0; at < text.length; at += size) ring.push(Buffer.from(text.slice(at, at + size)));
      expect(ring.size).toBeLessThanOrEqual(1000);
    }
    expect(ring.size).toBe(1000);
    const tail = all.slice(-1000);
    const expected = tail.slice(tail.indexOf('\n') + 1).split('\n');
    expect(ring.lines(1000)).toEqual(expected);
    expect(ring.lines(3)).toEqual(expected.slice(-3));
  });

  it('drops the line cut at the front, but not a line that starts exactly at the front', () => {
    const ring = new OutputRing(10);
    ring.push(Buffer.from('abcdef\n'));
    ring.push(Buffer.from('ghi\n')); // holds 'bcdef\nghi\n': 'bcdef' was cut
    expect(ring.lines(5)).toEqual(['ghi']);
    ring.push(Buffer.from('jklmnop\n')); // holds 'i\njklmnop\n': 'ghi' was cut
    expect(ring.lines(5)).toEqual(['jklmnop']);

    const exact = new OutputRing(8);
    exact.push(Buffer.from('aaaa\n'));
    exact.push(Buffer.from('bbb\n'));
    exact.push(Buffer.from('cccc'));
    // 'aaaa\n' dropped whole: the front starts a line
    expect(exact.lines(5)).toEqual(['bbb', 'cccc']);
  });

  it('keeps only the tail of a chunk larger than maxBytes, copied', () => {
    const ring = new OutputRing(16);
    ring.push(Buffer.from('old\n'));
    const big = Buffer.from(`${'z'.repeat(100)}\nlast line\nend`);
    ring.push(big);
    expect(ring.size).toBe(16);
    expect(ring.lines(5)).toEqual(['last line', 'end']);
    big.fill(0x41); // the ring holds a copy, not a view of the 114-byte buffer
    expect(ring.lines(5)).toEqual(['last line', 'end']);
    // A chunk of exactly maxBytes after a complete line: nothing of it is cut.
    const exact = new OutputRing(6);
    exact.push(Buffer.from('x\n'));
    exact.push(Buffer.from('abcde\n'));
    expect(exact.lines(5)).toEqual(['abcde']);
    // A single line longer than the ring: its start is gone, so it is left out.
    const long = new OutputRing(8);
    long.push(Buffer.from('a'.repeat(20)));
    expect(long.lines(5)).toEqual([]);
  });

  it('decodes multi-byte UTF-8 split across chunks, and a character cut at the front is dropped', () => {
    const text = 'ünïcødé → 日本語 🎉\nsecond: ✓\n';
    const bytes = Buffer.from(text);
    const ring = new OutputRing(1024);
    for (let at = 0; at < bytes.length; at += 1) ring.push(bytes.subarray(at, at + 1));
    expect(ring.lines(5)).toEqual(['ünïcødé → 日本語 🎉', 'second: ✓']);

    // Cut inside '日' (3 bytes): the front line is dropped whole, no replacement character appears.
    const small = new OutputRing(Buffer.byteLength('本語 🎉\nsecond: ✓\n') + 1);
    for (let at = 0; at < bytes.length; at += 5) small.push(bytes.subarray(at, at + 5));
    expect(small.lines(5)).toEqual(['second: ✓']);
  });

  it('holds bounded memory under a long stream of small chunks', () => {
    const ring = new OutputRing(64 * 1024);
    const chunk = Buffer.from('0123456789abcdef0123456789abcde\n');
    for (let i = 0; i < 200_000; i += 1) ring.push(chunk);
    expect(ring.size).toBe(64 * 1024);
    expect(ring.lines(2)).toEqual(['0123456789abcdef0123456789abcde', '0123456789abcdef0123456789abcde']);
  });

  it('rejects a maxBytes that is not a positive integer', () => {
    expect(() => new OutputRing(0)).toThrow(/maxBytes/);
  });
});

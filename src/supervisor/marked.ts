import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';

/** The environment variable that marks every process an app instance started, and what they start. */
export const MARK_VARIABLE = 'BULWARK_INSTANCE_MARK';

/**
 * Whether an app's processes are found by their mark (Linux: `/proc/<pid>/environ`) rather than by
 * a process group of their own. A process group needs a session of its own in Node (`setsid`), and
 * on Linux a session of its own is a scheduler autogroup of its own: the kernel then shares the CPU
 * between sessions first, and one app process at a time stalls for tens of milliseconds under load
 * (docs/benchmarks.md, the supervisor). Elsewhere the process group is kept.
 */
export const TRACK_BY_MARK = process.platform === 'linux';

/** How many `/proc/<pid>/environ` files are read at once. */
const SCAN_BATCH = 32;
const NUL = Buffer.from([0]);

/** A mark no other process on the machine carries. */
export function newMark(): string {
  return randomBytes(12).toString('hex');
}

/**
 * The pids of the live processes whose environment carries `mark` (the app process, whatever it
 * started, and whatever those started, reparented or not, unless one of them cleared its
 * environment). Processes of other users and those gone while read are skipped; zombies carry no
 * environment, so they are not listed.
 */
export async function markedProcesses(mark: string): Promise<number[]> {
  const needle = Buffer.from(`\0${MARK_VARIABLE}=${mark}\0`);
  const entries = await readdir('/proc').catch(() => [] as string[]);
  const pids = entries.map(Number).filter((pid) => Number.isInteger(pid) && pid > 0 && pid !== process.pid);
  const carries = async (pid: number) => {
    try {
      // Every entry is NUL-terminated; prefixing one NUL lets the first entry match too.
      return Buffer.concat([NUL, await readFile(`/proc/${pid}/environ`)]).includes(needle);
    } catch {
      return false; // gone, or another user's
    }
  };
  const found: number[] = [];
  // A few at a time: a file each open at once would run out of descriptors on a busy host, and an
  // unreadable file would hide a marked process.
  for (let at = 0; at < pids.length; at += SCAN_BATCH) {
    const batch = pids.slice(at, at + SCAN_BATCH);
    const marked = await Promise.all(batch.map(carries));
    for (const [i, pid] of batch.entries()) if (marked[i] === true) found.push(pid);
  }
  return found;
}

/** Sends `signal` to every pid that still exists; the number signalled. */
export function signalEach(pids: readonly number[], signal: NodeJS.Signals): number {
  let count = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
      count++;
    } catch {
      // ESRCH: gone since it was found
    }
  }
  return count;
}

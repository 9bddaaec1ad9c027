import { readFileSync } from 'node:fs';

/** A process's state, parent and session, from `/proc/<pid>/stat` (Linux only, like CI); undefined once gone. */
export function procStat(pid: number): { state: string; ppid: number; session: number } | undefined {
  if (!Number.isInteger(pid)) return undefined;
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may contain spaces; fields after it are plain.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', ppid: Number(fields[1]), session: Number(fields[3]) };
  } catch {
    return undefined;
  }
}

/**
 * True while a process with `pid` holds resources: a zombie (state Z) has released its memory and
 * sockets, and only waits for a parent (or the container's init) that may never reap it.
 */
export function alive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat.state !== 'Z';
}

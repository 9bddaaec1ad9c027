import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync, statSync, type Stats } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

/** Mode of the directories Bulwark keeps state in: only the owner may list or enter them. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of the files Bulwark writes: only the owner may read or write them. */
export const PRIVATE_FILE_MODE = 0o600;

// Windows has no POSIX modes (every file reads as 0666): nothing to check or tighten there.
const posix = process.platform !== 'win32';

/** Told about a permission Bulwark found too loose (and whether it could tighten it). */
export type PermissionWarning = (message: string) => void;

/** The default: a Node process warning (printed on stderr, code `BULWARK_PERMISSIONS`). */
export const warnProcess: PermissionWarning = (message) =>
  process.emitWarning(message, { code: 'BULWARK_PERMISSIONS' });

const mode = (stats: Stats): string => (stats.mode & 0o7777).toString(8).padStart(4, '0');

/**
 * Makes `dir` (and missing parents) exist, created 0700 whatever the umask. An existing directory
 * that others can read or enter is tightened to 0700 when this process owns it, with a warning; it
 * is left as it is, with a warning, when owned by someone else or shared by nature: sticky (like
 * `/tmp`), a file-system root, the working directory or the home directory. Throws what `mkdir`
 * and `stat` throw (the caller maps it).
 */
export function ensurePrivateDir(dir: string, warn: PermissionWarning = warnProcess): void {
  const absolute = path.resolve(dir);
  const created = mkdirSync(absolute, { recursive: true, mode: PRIVATE_DIR_MODE });
  // mkdir's mode is reduced by the umask; set it exactly on the directory this call created.
  if (created !== undefined) chmodSync(absolute, PRIVATE_DIR_MODE);
  const stats = statSync(absolute);
  if ((stats.mode & 0o077) === 0 || !posix) return;
  const shared =
    (stats.mode & 0o1000) !== 0 ||
    absolute === path.parse(absolute).root ||
    absolute === process.cwd() ||
    absolute === homedir();
  if (!shared && ownedByUs(stats)) {
    chmodSync(absolute, PRIVATE_DIR_MODE);
    warn(`data directory ${absolute} was ${mode(stats)} (readable by others); tightened to 0700`);
  } else {
    warn(
      `data directory ${absolute} is ${mode(stats)} (readable by others) and was left as it is` +
        ` (${shared ? 'a shared directory' : 'owned by another user'}); use a directory of its own, mode 0700`,
    );
  }
}

/**
 * Makes `file` exist with mode 0600 whatever the umask: creates it empty when missing; an existing
 * file with looser permissions is tightened when this process owns it (with a warning), else only
 * warned about. With `create: false` a missing file is left missing.
 */
export function ensurePrivateFile(
  file: string,
  warn: PermissionWarning = warnProcess,
  opts: { create?: boolean } = {},
): void {
  let stats: Stats;
  try {
    stats = statSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (opts.create === false) return;
    // 'a' never truncates: a file created in between by another process is kept as it is.
    const fd = openSync(file, 'a', PRIVATE_FILE_MODE);
    try {
      fchmodSync(fd, PRIVATE_FILE_MODE);
    } finally {
      closeSync(fd);
    }
    return;
  }
  if ((stats.mode & 0o077) === 0 || !posix) return;
  if (ownedByUs(stats)) {
    chmodSync(file, PRIVATE_FILE_MODE);
    warn(`${file} was ${mode(stats)} (readable by others); tightened to 0600`);
  } else {
    warn(`${file} is ${mode(stats)} (readable by others) and owned by another user; left as it is`);
  }
}

function ownedByUs(stats: Stats): boolean {
  return process.getuid !== undefined && stats.uid === process.getuid();
}

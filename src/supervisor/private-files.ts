// Everything the supervisor writes (state.json, app logs, crash records, hang reports, the control
// socket) is for its own user alone: directories 0700, files 0600, whatever the umask.
import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { bulwarkError } from '../errors/index.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../store/permissions.js';

/**
 * Creates `dir` (and missing parents) with mode 0700, or makes an existing one 0700 (mkdir's mode
 * does not change an existing directory, and a umask can only remove bits). Unlike the store's
 * `ensurePrivateDir`, which warns and goes on, this fails: the state directory holds the control
 * socket, which must never be reachable by others.
 *
 * @throws `BWK_ERR_SUPERVISOR_STATE_DIR` when it cannot (not its owner, read-only file system, ...).
 */
export function privateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    chmodSync(dir, PRIVATE_DIR_MODE);
  } catch (error) {
    throw bulwarkError(
      'BWK_ERR_SUPERVISOR_STATE_DIR',
      { dir, reason: (error as NodeJS.ErrnoException).code ?? (error as Error).message },
      { cause: error },
    );
  }
}

/**
 * Makes the state directory private before anything is written to it: `stateDir`, `logs/` and
 * `reports/` 0700, and every file already in them 0600 (files left by an earlier version, or by a
 * run under another umask). Symbolic links are left alone, never followed.
 *
 * @throws `BWK_ERR_SUPERVISOR_STATE_DIR` when a directory cannot be made private.
 */
export function secureStateDir(stateDir: string): void {
  for (const dir of [stateDir, path.join(stateDir, 'logs'), path.join(stateDir, 'reports')]) {
    privateDir(dir);
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      const stat = lstatSync(file, { throwIfNoEntry: false });
      if (stat?.isFile() === true && (stat.mode & 0o077) !== 0) chmodSync(file, PRIVATE_FILE_MODE);
    }
  }
}

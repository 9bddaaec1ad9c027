import { randomBytes } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { PRIVATE_FILE_MODE } from './permissions.js';

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** Permission bits of the written file, exactly (the umask does not apply). Default 0600. */
  mode?: number;
  /**
   * Keep the permission bits of the file being replaced, when there is one (`mode` then only
   * applies to a new file). For files the user owns and may have opened up on purpose, like their
   * config file; Bulwark's own state files stay private.
   */
  keepMode?: boolean;
}

/**
 * Replaces `file` with `data` so that a crash at any moment leaves either the old or the new
 * content, never a torn file: write a temp file in the same directory, fsync it, rename it over the
 * target (atomic on POSIX file systems), then fsync the directory so the rename itself is durable.
 * The file is 0600 unless `opts` says otherwise, whatever the umask; the temp file has that mode from
 * the start, so the content is never readable by others, not even for a moment.
 */
export async function writeFileAtomic(
  file: string,
  data: string,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const dir = path.dirname(file);
  const mode = (opts.keepMode === true ? await modeOf(file) : undefined) ?? opts.mode ?? PRIVATE_FILE_MODE;
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  // Created with the owner's bits only (also masked by the umask), then set exactly.
  const handle = await open(temp, 'w', mode & PRIVATE_FILE_MODE);
  try {
    await handle.chmod(mode);
    await handle.writeFile(data, 'utf8');
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  const directory = await open(dir, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/** Permission bits of `file`, or undefined when it does not exist. */
async function modeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).mode & 0o7777;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../store/atomic-file.js';
import { PRIVATE_DIR_MODE } from '../store/permissions.js';
import type { RevisionRecord } from './types.js';

const NAME = /^(\d+)\.json$/;

/**
 * The revisions of one config file: `<dir>/.<basename>.revisions/000042.json`, one file per
 * revision, each written atomically. Only the newest `limit` are kept. Writers call `append`
 * holding the file's lock; readers need no lock (a revision file is complete or absent).
 */
export class RevisionStore {
  readonly dir: string;
  private readonly limit: number;

  constructor(file: string, limit: number) {
    this.dir = path.join(path.dirname(file), `.${path.basename(file)}.revisions`);
    this.limit = limit;
  }

  /** Revision numbers on disk, newest first. */
  async numbers(): Promise<number[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return names
      .map((name) => NAME.exec(name)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => b - a);
  }

  /** One revision, or `undefined` when it is not on disk (never written, or pruned). */
  async read(revision: number): Promise<RevisionRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.fileOf(revision), 'utf8')) as RevisionRecord;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** The newest revision, or `undefined` when none was recorded. */
  async head(): Promise<RevisionRecord | undefined> {
    for (const n of await this.numbers()) {
      const record = await this.read(n);
      if (record !== undefined) return record;
    }
    return undefined;
  }

  /** Records a revision (atomically, durably), then deletes those beyond the limit. Call under the lock. */
  async append(record: RevisionRecord): Promise<void> {
    // Revisions hold whole config texts (secrets included): private, 0700 and 0600 files.
    await mkdir(this.dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    await writeFileAtomic(this.fileOf(record.revision), `${JSON.stringify(record, null, 2)}\n`);
    const stale = (await this.numbers()).slice(this.limit);
    await Promise.all(stale.map((n) => rm(this.fileOf(n), { force: true })));
  }

  private fileOf(revision: number): string {
    return path.join(this.dir, `${String(revision).padStart(6, '0')}.json`);
  }
}

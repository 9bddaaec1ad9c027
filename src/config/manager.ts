import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Static, TObject } from 'typebox';
import { bulwarkError, type BulwarkError } from '../errors/index.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { ConfigCodec, formatOf, readConfigText, type FileState } from './codec.js';
import { invalidConfig, isConfigContentError, readEnvLayer, type EnvLayer } from './env.js';
import { lockSettings, withFileLock, type LockGuard, type LockSettings } from './lock.js';
import { deepMerge, diffConfigs, getIn, redact, setIn } from './paths.js';
import { RevisionStore } from './revisions.js';
import { describeSchema, type SchemaInfo } from './schema.js';
import { evaluateConfig, explainPath, type Active, type Evaluated } from './evaluate.js';
import { stderrLogger } from './logger.js';
import { FileWatcher } from './watch.js';
export type { ConfigPath, ConfigValue } from './types.js';
import type {
  ChangeEvent,
  ConfigPath,
  ConfigValue,
  ConfigLogger,
  ConfigManagerOptions,
  DiffEntry,
  Explanation,
  RevisionInfo,
  RevisionRecord,
  StartReport,
  WriteOptions,
} from './types.js';

/**
 * The configuration manager of a service: a TypeBox schema, a file (JSON or dotenv) and the
 * environment, merged in that order over the schema's defaults, validated as a whole.
 *
 * Guarantees: every write (`set`, `replace`, `rollback`) holds an inter-process lock, re-reads the
 * file under it, checks `ifRevision`, validates, then replaces the file atomically (temp file,
 * fsync, rename, fsync dir) and records a numbered revision; a `kill -9` at any moment leaves the
 * old or the new file, never a torn one, and a dead writer's lock is taken over after `staleMs`.
 * An invalid file never becomes the active config: at start the newest valid revision is used
 * instead; at runtime the active config stays and `onInvalid` listeners hear why. Secrets (paths in
 * `secrets` or schema fields with `secret: true`) are `'[redacted]'` in everything the manager
 * outputs (`redacted`, `explain`, diffs, history, errors, logs); `get()` returns the real values.
 */
export class ConfigManager<S extends TObject, T extends Static<S> = Static<S>> {
  /** The config file, resolved. */
  readonly file: string;
  private readonly schema: S;
  private readonly label: string;
  private readonly info: SchemaInfo;
  private readonly codec: ConfigCodec;
  private readonly revisions: RevisionStore;
  private readonly env: NodeJS.ProcessEnv;
  private readonly envPrefix: string | undefined;
  private readonly author: string;
  private readonly logger: ConfigLogger;
  private readonly lock: LockSettings;
  private readonly watchTiming: { debounceMs: number; pollMs: number };
  private envLayer: EnvLayer = { layer: {}, vars: new Map() };
  private active: Active | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private watcher: FileWatcher | undefined;
  private lastInvalid: string | undefined;
  private readonly changeListeners = new Set<(event: ChangeEvent<T>) => void>();
  private readonly invalidListeners = new Set<(error: BulwarkError) => void>();

  constructor(opts: ConfigManagerOptions<S>) {
    const limit = opts.historyLimit ?? 50;
    if (!Number.isInteger(limit) || limit < 1) {
      throw bulwarkError('BWK_ERR_CONFIG_OPTIONS', {
        detail: `historyLimit must be a positive integer, got ${limit}`,
      });
    }
    if ((opts.schema as { type?: unknown }).type !== 'object') {
      throw bulwarkError('BWK_ERR_CONFIG_OPTIONS', { detail: 'the schema must be a Type.Object' });
    }
    this.schema = opts.schema;
    this.file = path.resolve(opts.file);
    this.label = path.basename(this.file);
    this.info = describeSchema(opts.schema);
    for (const secret of opts.secrets ?? []) this.info.secrets.add(secret);
    this.codec = new ConfigCodec(formatOf(this.file), this.label, this.info);
    this.revisions = new RevisionStore(this.file, limit);
    this.env = opts.env ?? process.env;
    this.envPrefix = opts.envPrefix;
    this.author = opts.author ?? `process:${process.pid}`;
    this.logger = opts.logger ?? stderrLogger;
    this.lock = lockSettings(opts.lock);
    this.watchTiming = { debounceMs: opts.watchDebounceMs ?? 50, pollMs: opts.watchPollMs ?? 1000 };
  }

  /**
   * Reads the environment and the file and makes them the active config. A file that does not
   * parse or validate is replaced by the newest valid revision (logged, and reported in the result);
   * with none, or when the environment is invalid, rejects with the coded error. A valid file not
   * yet in the history is recorded as a new revision (author `file`).
   */
  async start(): Promise<StartReport> {
    return this.serial(async () => {
      this.envLayer = readEnvLayer(this.info, this.env, this.envPrefix, this.label);
      const text = await readConfigText(this.file);
      try {
        const evaluated = this.evaluate(text);
        const head = await this.revisions.head();
        this.active =
          text === undefined || head?.content === text
            ? { ...evaluated, revision: head?.revision ?? 0, fallback: false }
            : await this.recordDisk(head === undefined ? 'first load' : 'changed on disk');
        return { revision: this.active.revision, from: text === undefined ? 'defaults' : 'file' };
      } catch (error) {
        if (!isConfigContentError(error)) throw error;
        for (const n of await this.revisions.numbers()) {
          const record = await this.revisions.read(n);
          if (record === undefined) continue;
          try {
            this.active = { ...this.evaluate(record.content), revision: n, fallback: true };
          } catch {
            continue;
          }
          this.lastInvalid = text;
          this.logger.warn(
            { code: error.code, error: error.message, details: error.details, revision: n },
            `config file ${this.label} is invalid: using revision ${n}, the last good one`,
          );
          return { revision: n, from: 'revision', error };
        }
        throw error;
      }
    });
  }

  /** The current revision number (0 when no file was ever recorded). */
  get revision(): number {
    return this.require('revision').revision;
  }

  /** The active config (typed, deep-frozen), or the value at a dotted path (`undefined` when unset). */
  get(): T;
  get<P extends ConfigPath<T>>(path: P): ConfigValue<T, P>;
  get(path?: string): unknown {
    const { config } = this.require('get');
    return path === undefined ? config : getIn(config, path);
  }

  /** The active config with every secret replaced by `'[redacted]'`: safe to log or show. */
  redacted(): Record<string, unknown> {
    return redact(this.require('redacted').config, this.info.secrets) as Record<string, unknown>;
  }

  /** Where the value at `path` comes from: the environment, the file (with its line) or a default. */
  explain(path: string): Explanation {
    return explainPath(this.require('explain'), path, this.envLayer, this.file, this.info.secrets);
  }

  /**
   * Sets one value in the file (`undefined` removes it) as a new revision; see {@link replace} for
   * the guarantees. A file that does not parse cannot be edited: rejects with its parse error (use
   * `replace` or `rollback`). Resolves with the new revision (the current one when nothing changed).
   */
  async set<P extends ConfigPath<T>>(path: P, value: ConfigValue<T, P>, opts?: WriteOptions): Promise<number>;
  async set(path: string, value: unknown, opts?: WriteOptions): Promise<number>;
  async set(path: string, value: unknown, opts: WriteOptions = {}): Promise<number> {
    return this.write(opts, `set ${path}`, (text) => {
      const current = this.codec.parse(text);
      return this.render(current, setIn(current.layer, path, value));
    });
  }

  /**
   * Replaces the whole file content with `whole` as a new revision. Under the file's lock: re-reads
   * the file, checks `ifRevision` (else `BWK_ERR_CONFIG_CONFLICT`), validates defaults + `whole` +
   * environment (else `BWK_ERR_CONFIG_INVALID`, nothing written), writes atomically, records the
   * revision. `BWK_ERR_CONFIG_LOCKED` when the lock stays taken for `lock.waitMs`.
   */
  async replace(whole: Partial<T> | Record<string, unknown>, opts: WriteOptions = {}): Promise<number> {
    return this.write(opts, 'replace', (text) => {
      let current: FileState;
      try {
        current = this.codec.parse(text);
      } catch {
        current = { text: undefined, layer: {}, lines: new Map(), problems: [] };
      }
      return this.render(current, whole);
    });
  }

  /** Writes the content of revision `revision` again, as a new revision, through the same checks. */
  async rollback(revision: number, opts: WriteOptions = {}): Promise<number> {
    const record = await this.record(revision);
    return this.write(
      { reason: `rollback to revision ${revision}`, ...opts },
      'rollback',
      () => record.content,
    );
  }

  /** The newest `limit` revisions (default all kept) below `before`, newest first, without their content. */
  async history(limit?: number, before = Infinity): Promise<RevisionInfo[]> {
    const out: RevisionInfo[] = [];
    for (const n of (await this.revisions.numbers()).filter((r) => r < before).slice(0, limit)) {
      const record = await this.revisions.read(n);
      if (record === undefined) continue;
      const { content: _content, ...info } = record;
      out.push(info);
    }
    return out;
  }

  /**
   * Checks `whole` as {@link replace} would (defaults + `whole` + environment) and writes nothing:
   * returns the changes it would make to the active file's config (secrets redacted), or throws
   * `BWK_ERR_CONFIG_INVALID` naming every bad field.
   */
  validate(whole: Record<string, unknown>): DiffEntry[] {
    const active = this.require('validate');
    const evaluated = this.evaluate(this.render(active.state, whole), true);
    return diffConfigs(active.fileConfig, evaluated.fileConfig, this.info.secrets);
  }

  /** The changes from revision `a` to revision `b` (defaults + file), secrets redacted. */
  async diff(a: number, b: number): Promise<DiffEntry[]> {
    const [from, to] = await Promise.all([this.record(a), this.record(b)]);
    return diffConfigs(this.fileConfigOf(from.content), this.fileConfigOf(to.content), this.info.secrets);
  }

  /**
   * Re-reads the file now (the watcher calls this): a valid change becomes the active config (a new
   * revision unless another writer recorded it already); an invalid one leaves it and is reported
   * to `onInvalid` listeners once per distinct content. Resolves with the active revision.
   */
  async reload(): Promise<number> {
    return this.serial(async () => {
      const active = this.require('reload');
      const text = await readConfigText(this.file);
      const head = await this.revisions.head();
      if (text === active.text && (head === undefined || head.revision === active.revision))
        return active.revision;
      if (text === undefined) return active.revision;
      try {
        const evaluated = this.evaluate(text);
        const next =
          head?.content === text
            ? { ...evaluated, revision: head.revision, fallback: false }
            : await this.recordDisk('changed on disk');
        this.lastInvalid = undefined;
        this.activate(next);
      } catch (error) {
        if (!isConfigContentError(error)) throw error;
        this.reportInvalid(text, error);
      }
      return this.require('reload').revision;
    });
  }

  /** Watches the file (fs.watch, debounced, plus a stat every `watchPollMs`) and reloads on change. */
  watch(): void {
    this.require('watch');
    this.watcher ??= new FileWatcher(this.file, this.watchTiming, () => {
      this.reload().catch((error: unknown) =>
        this.logger.error({ err: error, file: this.file }, 'config reload failed'),
      );
    });
  }

  /** Calls `listener` after each change of the active config; returns the unsubscribe function. */
  onChange(listener: (event: ChangeEvent<T>) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Calls `listener` with the coded error when a changed file is invalid (once per content). */
  onInvalid(listener: (error: BulwarkError) => void): () => void {
    this.invalidListeners.add(listener);
    return () => this.invalidListeners.delete(listener);
  }

  /** Stops watching and waits for operations in flight. The last config stays readable. */
  async close(): Promise<void> {
    this.watcher?.close();
    this.watcher = undefined;
    await this.tail;
  }

  private async write(opts: WriteOptions, what: string, produce: (text: string | undefined) => string) {
    return this.serial(async () => {
      this.require(what);
      const next = await withFileLock(this.file, this.lock, this.logger, async (guard) => {
        const text = await readConfigText(this.file);
        let head = await this.revisions.head();
        if (text !== undefined && head?.content !== text) {
          // An edit nobody recorded yet (by hand, or a writer killed between file and revision):
          // record it first, so compare-and-set sees it and the history has it.
          try {
            head = await this.appendRevision(guard, head, this.evaluate(text), 'file', 'changed on disk');
          } catch (error) {
            if (!isConfigContentError(error)) throw error;
          }
        }
        const current = head?.revision ?? 0;
        if (opts.ifRevision !== undefined && opts.ifRevision !== current) {
          throw bulwarkError('BWK_ERR_CONFIG_CONFLICT', {
            file: this.label,
            expected: opts.ifRevision,
            actual: current,
          });
        }
        const nextText = produce(text);
        const evaluated = this.evaluate(nextText, true);
        if (nextText === text && head !== undefined)
          return { ...evaluated, revision: current, fallback: false };
        if (guard.compromised()) throw this.lockLost();
        // The user's file: its mode is theirs to choose; a new one is created 0600.
        await writeFileAtomic(this.file, nextText, { keepMode: true });
        const record = await this.appendRevision(
          guard,
          head,
          evaluated,
          opts.author ?? this.author,
          opts.reason ?? what,
        );
        return { ...evaluated, revision: record.revision, fallback: false };
      });
      this.lastInvalid = undefined;
      this.activate(next);
      return next.revision;
    });
  }

  /** Records the file on disk as a new revision, under the lock (another process may be writing). */
  private async recordDisk(reason: string): Promise<Active> {
    return withFileLock(this.file, this.lock, this.logger, async (guard) => {
      const text = await readConfigText(this.file);
      const evaluated = this.evaluate(text);
      const head = await this.revisions.head();
      if (text === undefined || head?.content === text) {
        return { ...evaluated, revision: head?.revision ?? 0, fallback: false };
      }
      const record = await this.appendRevision(guard, head, evaluated, 'file', reason);
      return { ...evaluated, revision: record.revision, fallback: false };
    });
  }

  private async appendRevision(
    guard: LockGuard,
    head: RevisionRecord | undefined,
    evaluated: Evaluated,
    author: string,
    reason: string,
  ): Promise<RevisionRecord> {
    if (guard.compromised()) throw this.lockLost();
    const before = head === undefined ? this.info.defaults : this.fileConfigOf(head.content);
    const record: RevisionRecord = {
      revision: (head?.revision ?? 0) + 1,
      at: new Date().toISOString(),
      author,
      reason,
      diff: diffConfigs(before, evaluated.fileConfig, this.info.secrets),
      content: evaluated.text ?? '',
    };
    await this.revisions.append(record);
    return record;
  }

  /** Parses and validates file text; throws `BWK_ERR_CONFIG_PARSE` or `BWK_ERR_CONFIG_INVALID`. */
  private evaluate(text: string | undefined, proposed = false): Evaluated {
    const { schema, label, info, codec, envLayer } = this;
    return evaluateConfig({ schema, label, info, codec, envLayer }, text, proposed);
  }

  private render(current: FileState, layer: Record<string, unknown>): string {
    const problems = this.codec.unrepresentable(layer);
    if (problems.length > 0) throw invalidConfig(this.label, problems);
    return this.codec.render(current, layer);
  }

  private fileConfigOf(text: string): Record<string, unknown> {
    try {
      return deepMerge(this.info.defaults, this.codec.parse(text).layer);
    } catch {
      return this.info.defaults;
    }
  }

  private async record(revision: number): Promise<RevisionRecord> {
    const record = await this.revisions.read(revision);
    if (record !== undefined) return record;
    const kept = await this.revisions.numbers();
    throw bulwarkError('BWK_ERR_CONFIG_REVISION_NOT_FOUND', {
      revision,
      file: this.label,
      kept: kept.length === 0 ? 'none' : `${kept.at(-1)}..${kept[0]}`,
    });
  }

  private activate(next: Active): void {
    const previous = this.active;
    this.active = next;
    if (previous === undefined) return;
    if (previous.revision === next.revision && isDeepStrictEqual(previous.config, next.config)) return;
    const event: ChangeEvent<T> = {
      revision: next.revision,
      diff: diffConfigs(previous.config, next.config, this.info.secrets),
      config: next.config as T,
    };
    for (const listener of this.changeListeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error({ err: error }, 'config onChange listener threw');
      }
    }
  }

  private reportInvalid(text: string, error: BulwarkError): void {
    if (this.lastInvalid === text) return;
    this.lastInvalid = text;
    this.logger.warn(
      { code: error.code, error: error.message, details: error.details, revision: this.active?.revision },
      `config file ${this.label} is invalid: keeping revision ${this.active?.revision}`,
    );
    for (const listener of this.invalidListeners) {
      try {
        listener(error);
      } catch (thrown) {
        this.logger.error({ err: thrown }, 'config onInvalid listener threw');
      }
    }
  }

  private lockLost(): BulwarkError {
    return bulwarkError('BWK_ERR_CONFIG_LOCKED', { file: this.label, waitedMs: 0 });
  }

  private require(operation: string): Active {
    if (this.active === undefined)
      throw bulwarkError('BWK_ERR_CONFIG_NOT_STARTED', { file: this.label, operation });
    return this.active;
  }

  /** Runs operations of this manager one at a time (the file lock is per process, not per call). */
  private serial<R>(fn: () => Promise<R>): Promise<R> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }
}

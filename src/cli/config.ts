import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidArgumentError, Option, type Command } from 'commander';
import Type, { type TObject } from 'typebox';
import { ConfigManager, type ConfigLogger, type DiffEntry } from '../config/index.js';
import { getIn } from '../config/paths.js';
import { bulwarkError } from '../errors/index.js';
import { cliActor } from './flags.js';
import { table } from './shared.js';

/** The options every `bulwark config` subcommand takes. */
interface CommonOptions {
  file?: string;
  schema?: string;
  envPrefix?: string;
  json?: boolean;
}

function usage(detail: string): Error {
  return bulwarkError('BWK_ERR_CLI_USAGE', { detail });
}

function intFrom(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`must be an integer >= ${min}`);
    return n;
  };
}

/** `value` parsed as JSON when it parses (`10`, `true`, `["a"]`, `"10"`), else the string itself. */
export function parseCliValue(value: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}

/**
 * Imports the schema module named by `--schema` (resolved against the cwd): its default export, or
 * its export named `schema`, must be a TypeBox `Type.Object`. `BWK_ERR_CLI_USAGE` naming `--schema`
 * otherwise.
 */
export async function loadSchema(modulePath: string): Promise<TObject> {
  const resolved = path.resolve(process.cwd(), modulePath);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(resolved).href)) as Record<string, unknown>;
  } catch (error) {
    throw bulwarkError(
      'BWK_ERR_CLI_USAGE',
      { detail: `--schema ${modulePath}: cannot import ${resolved}: ${(error as Error).message}` },
      { cause: error },
    );
  }
  const candidate = mod['default'] ?? mod['schema'];
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    (candidate as { type?: unknown }).type !== 'object'
  ) {
    throw usage(
      `--schema ${modulePath}: the module's default export (or its export "schema") must be a TypeBox Type.Object`,
    );
  }
  return candidate as TObject;
}

/** Messages of the manager for the command line: warnings and errors on stderr, one line each. */
class CliLogger implements ConfigLogger {
  /** While set, warnings are dropped (the command reports a broken file at start itself). */
  muted = false;
  info(): void {}
  warn(_obj: object, msg: string): void {
    if (!this.muted) console.error(`bulwark: warning: ${msg}`);
  }
  error(_obj: object, msg: string): void {
    console.error(`bulwark: error: ${msg}`);
  }
}

interface Opened {
  manager: ConfigManager<TObject>;
  logger: CliLogger;
}

/**
 * Builds the manager from the common options (`--schema` required unless `schemaOptional`; without
 * it, a schema accepting anything, for commands that only read the stored revisions), runs `fn` and
 * closes the manager. It is never watching: the command runs once.
 */
async function withManager<R>(
  options: CommonOptions,
  schemaOptional: boolean,
  fn: (opened: Opened) => Promise<R>,
): Promise<R> {
  const file = options.file;
  if (file === undefined || file.trim() === '')
    throw usage('--file <path> (or BULWARK_CONFIG_FILE) is required: the config file');
  if (options.schema === undefined && !schemaOptional)
    throw usage('--schema <module> is required: a module exporting the TypeBox schema of the config');
  const schema: TObject =
    options.schema === undefined
      ? Type.Object({}, { additionalProperties: true })
      : await loadSchema(options.schema);
  const logger = new CliLogger();
  const manager = new ConfigManager<TObject>({
    schema,
    file: path.resolve(process.cwd(), file),
    env: process.env,
    ...(options.envPrefix === undefined ? {} : { envPrefix: options.envPrefix }),
    author: cliActor(),
    logger,
  });
  try {
    return await fn({ manager, logger });
  } finally {
    await manager.close();
  }
}

/** Starts the manager with its own start warning muted; resolves with the start report. */
async function start({ manager, logger }: Opened) {
  logger.muted = true;
  try {
    return await manager.start();
  } finally {
    logger.muted = false;
  }
}

/** A value as the CLI prints it: JSON, `(unset)` for nothing. */
function shown(value: unknown): string {
  return value === undefined ? '(unset)' : JSON.stringify(value);
}

function diffLines(diff: DiffEntry[]): string {
  if (diff.length === 0) return 'no changes';
  return diff.map((d) => `${d.path}: ${shown(d.before)} -> ${shown(d.after)}`).join('\n');
}

/**
 * Defines `bulwark config` and its subcommands to `program`: get, set, validate, history, diff,
 * rollback, explain over a service's config file managed by {@link ConfigManager}. Errors (an invalid
 * value, a stale `--if-revision`, a file that does not parse) propagate to the caller, which prints
 * their code (and each bad field) and exits 1. Writes are recorded with author `cli:<$USER>`.
 */
export function defineConfigCommand(config: Command): void {
  config.addHelpText(
    'after',
    [
      '',
      'Every subcommand takes --file <path> (or BULWARK_CONFIG_FILE), --schema <module> (a module',
      'whose default export, or export "schema", is the TypeBox schema; not needed by history),',
      '--env-prefix <prefix> and --json.',
      '',
      'Examples:',
      '  bulwark config get db --file config.json --schema ./dist/config-schema.js',
      '  bulwark config set db.poolSize 20 --if-revision 7 --reason "more load" --file config.json --schema ./s.js',
      '  bulwark config validate --file config.env --schema ./s.js',
      '  bulwark config history --limit 10 --file config.json',
      '  bulwark config rollback 6 --reason "bad change" --file config.json --schema ./s.js',
    ].join('\n'),
  );

  const sub = (name: string, description: string): Command =>
    config
      .command(name)
      .description(description)
      .addOption(new Option('--file <path>', 'the config file (.json or .env)').env('BULWARK_CONFIG_FILE'))
      .option('--schema <module>', 'module exporting the TypeBox schema (default export or "schema")')
      .option('--env-prefix <prefix>', 'prefix of the environment variables (APP: APP_DB_POOL_SIZE)')
      .option('--json', 'print JSON');

  sub('get', 'the active config, or the value at a dotted path (secrets print as [redacted])')
    .argument('[path]', 'dotted path, e.g. db.poolSize')
    .action(async (at: string | undefined, options: CommonOptions) => {
      await withManager(options, false, async (opened) => {
        const report = await start(opened);
        if (report.from === 'revision' && report.error !== undefined)
          console.error(
            `bulwark: warning: ${opened.manager.file} is invalid (${report.error.code}: ${report.error.message}); showing revision ${report.revision}, the last good one`,
          );
        const all = opened.manager.redacted();
        const value = at === undefined ? all : getIn(all, at);
        if (value === undefined) throw usage(`${at ?? ''} is not set`);
        console.log(JSON.stringify(value, null, 2));
      });
    });

  sub('set', 'set one value in the file, as a new revision (validated, locked, atomic)')
    .argument('<path>', 'dotted path, e.g. db.poolSize')
    .argument('<value>', 'JSON when it parses (20, true, ["a"], "20"), else taken as a string')
    .option('--if-revision <n>', 'only if the file is still at revision n (compare-and-set)', intFrom(0))
    .option('--reason <text>', 'why, recorded in the revision')
    .action(
      async (at: string, raw: string, options: CommonOptions & { ifRevision?: number; reason?: string }) => {
        await withManager(options, false, async (opened) => {
          await start(opened);
          const before = opened.manager.revision;
          const revision = await opened.manager.set(at, parseCliValue(raw), {
            author: cliActor(),
            ...(options.ifRevision === undefined ? {} : { ifRevision: options.ifRevision }),
            ...(options.reason === undefined ? {} : { reason: options.reason }),
          });
          const changed = revision !== before;
          if (options.json === true) console.log(JSON.stringify({ revision, changed }));
          else console.log(changed ? `set ${at}: revision ${revision}` : `unchanged: revision ${revision}`);
        });
      },
    );

  sub('validate', 'parse and validate the file against the schema and the environment').action(
    async (options: CommonOptions) => {
      await withManager(options, false, async (opened) => {
        const report = await start(opened);
        // A broken file is replaced by the last good revision at start: here it is the answer.
        if (report.error !== undefined) throw report.error;
        if (options.json === true)
          console.log(JSON.stringify({ valid: true, revision: report.revision, from: report.from }));
        else
          console.log(
            `valid (revision ${report.revision})${report.from === 'defaults' ? ': no file, defaults and environment only' : ''}`,
          );
      });
    },
  );

  sub('history', 'revisions, newest first: revision, time, author, reason, changed paths')
    .option('--limit <n>', 'at most n revisions', intFrom(1))
    .action(async (options: CommonOptions & { limit?: number }) => {
      await withManager(options, true, async ({ manager }) => {
        const revisions = await manager.history(options.limit);
        if (options.json === true) {
          console.log(JSON.stringify(revisions, null, 2));
          return;
        }
        if (revisions.length === 0) {
          console.log('no revisions');
          return;
        }
        console.log(
          table([
            ['revision', 'time', 'author', 'reason', 'changed'],
            ...revisions.map((r) => [
              String(r.revision),
              r.at,
              r.author,
              r.reason,
              r.diff.map((d) => d.path).join(', ') || '-',
            ]),
          ]),
        );
      });
    });

  sub('diff', 'the changes from revision a to revision b (secrets redacted)')
    .argument('<a>', 'revision', intFrom(1))
    .argument('<b>', 'revision', intFrom(1))
    .action(async (a: number, b: number, options: CommonOptions) => {
      await withManager(options, false, async ({ manager }) => {
        const diff = await manager.diff(a, b);
        console.log(options.json === true ? JSON.stringify(diff, null, 2) : diffLines(diff));
      });
    });

  sub('rollback', "write an old revision's content again, as a new revision")
    .argument('<revision>', 'the revision to restore', intFrom(1))
    .option('--if-revision <n>', 'only if the file is still at revision n (compare-and-set)', intFrom(0))
    .option('--reason <text>', 'why, recorded in the revision (default "rollback to revision <n>")')
    .action(async (target: number, options: CommonOptions & { ifRevision?: number; reason?: string }) => {
      await withManager(options, false, async (opened) => {
        await start(opened);
        const revision = await opened.manager.rollback(target, {
          author: cliActor(),
          ...(options.ifRevision === undefined ? {} : { ifRevision: options.ifRevision }),
          ...(options.reason === undefined ? {} : { reason: options.reason }),
        });
        if (options.json === true) console.log(JSON.stringify({ revision, restored: target }));
        else console.log(`rolled back to revision ${target}: revision ${revision}`);
      });
    });

  sub('explain', 'where the value at a path comes from: its layer and source (file line or variable)')
    .argument('<path>', 'dotted path, e.g. db.poolSize')
    .action(async (at: string, options: CommonOptions) => {
      await withManager(options, false, async (opened) => {
        const report = await start(opened);
        if (report.from === 'revision' && report.error !== undefined)
          console.error(
            `bulwark: warning: ${opened.manager.file} is invalid (${report.error.code}); explaining revision ${report.revision}, the last good one`,
          );
        const explanation = opened.manager.explain(at);
        if (options.json === true) {
          console.log(JSON.stringify(explanation, null, 2));
          return;
        }
        console.log(`${explanation.path} = ${shown(explanation.value)}`);
        console.log(`layer:  ${explanation.layer}`);
        console.log(`source: ${explanation.source}`);
      });
    });
}

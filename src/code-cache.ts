// Runs a bundled CommonJS program (the `bulwark` command dist/cli/main.cjs, the servers
// dist/app/server.cjs and dist/spin/server.cjs) with V8's code cache, so that from its second run
// on, V8 neither parses nor compiles the bundle (~2 MB) again: its bytecode, as left by the previous
// run, is read from a file. Node 22 does this by itself
// (`module.enableCompileCache()`, for ES modules too); Node 20, which Bulwark supports, has it only
// for scripts compiled with `vm.Script` — hence a CommonJS bundle, run the way Node runs one.
//
// Where: `$XDG_CACHE_HOME/bulwark` (or `~/.cache/bulwark`), a directory of this user's only (0700;
// one that is not is left alone and nothing is cached), one file per program, build and Node
// version (0600, written once the program ran 5 s and its event loop is quiet, or at its exit, whole then renamed, so a concurrent run never reads half of one). The
// file's name carries a digest of the bundle's content: V8 itself checks only the source's length,
// so a stale cache of a same-length build must never be found. `BULWARK_CODE_CACHE=off` turns it
// off; a cache V8 rejects (another V8 flag set) is written anew.
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { homedir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { constants, Script } from 'node:vm';

/** How long a program runs before its cache is written (if it has not exited by then). */
const WRITE_AFTER_MS = 5_000;
/**
 * Writing the cache holds the event loop (~30 ms for Spin's bundle), so after WRITE_AFTER_MS it
 * waits for a quarter second in which the loop was busy less than QUIET_ELU of the time, looked at
 * every QUIET_EVERY_MS; a loop never that quiet has it written at WRITE_BY_MS.
 */
const QUIET_EVERY_MS = 250;
const QUIET_ELU = 0.3;
const WRITE_BY_MS = 120_000;

/** The directory of the cache, or undefined when there is none to use. */
export function codeCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env['BULWARK_CODE_CACHE'] === 'off') return undefined;
  const base = env['XDG_CACHE_HOME'] || (homedir() === '' ? undefined : path.join(homedir(), '.cache'));
  if (base === undefined) return undefined;
  const dir = path.join(base, 'bulwark');
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stat = lstatSync(dir);
    // Another user's directory, or one others may write to, could hand this process its bytecode.
    const mine = process.getuid === undefined || stat.uid === process.getuid();
    return stat.isDirectory() && mine && (stat.mode & 0o077) === 0 ? dir : undefined;
  } catch {
    return undefined; // a read-only home, no home: run without the cache
  }
}

/**
 * Runs the CommonJS file `file` as Node would (`require`, `module`, `__filename` of its own), with
 * the code cache of `dir` when there is one; writes the cache when the process exits if it had none.
 */
export function runCached(file: string, dir = codeCacheDir()): void {
  const source = readFileSync(file, 'utf8');
  // One cache per installed copy (its path) and build (its content): another copy's is left alone.
  const program = `${path.basename(file)}-${digestOf(path.resolve(file), 8)}-`;
  const cacheFile =
    dir === undefined
      ? undefined
      : path.join(dir, `${program}${digestOf(source, 16)}-${process.version}-${process.arch}.v8`);
  let cachedData: Buffer | undefined;
  try {
    if (cacheFile !== undefined) cachedData = readFileSync(cacheFile);
  } catch {
    // none yet
  }
  const script = new Script(Module.wrap(source), {
    filename: file,
    ...(cachedData === undefined ? {} : { cachedData }),
    // A dynamic import() in the bundle resolves as it would in a file Node loaded itself.
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  if (cacheFile !== undefined && (cachedData === undefined || script.cachedDataRejected === true)) {
    // Once the program has run a while (a server, 5 s after it started, at a quiet moment) or at its exit (a command),
    // so the cache holds what it compiled too (the functions it called), not only the top level.
    let written = false;
    const write = () => {
      if (!written) writeCache(cacheFile, program, script);
      written = true;
    };
    setTimeout(() => whenQuiet(write), WRITE_AFTER_MS).unref();
    process.once('exit', write);
  }
  const module = new Module(file);
  module.filename = file;
  const run = script.runInThisContext() as (
    exports: unknown,
    require: NodeJS.Require,
    module: Module,
    filename: string,
    dirname: string,
  ) => void;
  run.call(module.exports, module.exports, createRequire(file), module, file, path.dirname(file));
}

/** Calls `run` at the end of the first QUIET_EVERY_MS with the event loop busy less than QUIET_ELU (WRITE_BY_MS at the latest). */
function whenQuiet(run: () => void): void {
  const giveUpAt = Date.now() + WRITE_BY_MS - WRITE_AFTER_MS;
  let last = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    if (busy >= QUIET_ELU && Date.now() < giveUpAt) return;
    clearInterval(timer);
    run();
  }, QUIET_EVERY_MS);
  timer.unref();
}

const digestOf = (text: string, length: number) =>
  createHash('sha256').update(text).digest('hex').slice(0, length);

/** Writes the cache whole (a temporary file renamed) and drops the same program's older ones. */
function writeCache(file: string, prefix: string, script: Script): void {
  try {
    const temporary = `${file}.${process.pid}.tmp`;
    writeFileSync(temporary, script.createCachedData(), { mode: 0o600 });
    renameSync(temporary, file);
    const dir = path.dirname(file);
    for (const other of readdirSync(dir))
      if (other.startsWith(prefix) && path.join(dir, other) !== file)
        rmSync(path.join(dir, other), { force: true });
  } catch {
    // A full disk or a read-only cache: the next run compiles again, nothing else changes.
  }
}

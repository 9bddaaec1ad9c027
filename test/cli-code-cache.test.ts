// The built `bulwark` command (bin/bulwark.js over dist/, as `npm install` leaves it) and the built
// demo server with V8's code cache (src/code-cache.ts): the first run writes the cache (0600 in a
// 0700 directory of the user's; a server 5 s after it started once its event loop is quiet, or
// when it stops), the next runs
// read it and answer the same; a damaged cache is rejected by V8 and written anew; a directory
// others can write to, or BULWARK_CODE_CACHE=off, means no cache at all; help and the version run
// without it.
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = mkdtempSync(path.join(tmpdir(), 'bulwark-code-cache-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

if (!existsSync('dist/cli/main.cjs'))
  throw new Error('dist/cli/main.cjs is missing: run `npm run build` first');

/** Runs the command with its cache under `xdg` and a data directory of its own. */
function bulwark(xdg: string, args: string[], env: Record<string, string> = {}) {
  const run = spawnSync(process.execPath, ['bin/bulwark.js', ...args], {
    encoding: 'utf8',
    env: {
      PATH: process.env['PATH'],
      XDG_CACHE_HOME: xdg,
      BULWARK_DATA_DIR: path.join(root, 'data'),
      ...env,
    },
    timeout: 30_000,
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const files = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

describe('the bulwark command with the code cache', () => {
  it('writes its cache once, private, and answers the same from it', () => {
    const xdg = path.join(root, 'one');
    const cache = path.join(xdg, 'bulwark');
    const first = bulwark(xdg, ['flags', 'list']);
    expect([first.status, first.stderr]).toEqual([0, '']);
    expect(first.stdout).toContain('bulwark.cache');
    const [file, ...others] = files(cache);
    expect(others).toEqual([]);
    expect(file).toMatch(/^main\.cjs-[0-9a-f]{8}-[0-9a-f]{16}-v\d+\.\d+\.\d+-\w+\.v8$/);
    expect(statSync(cache).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(cache, file!)).mode & 0o777).toBe(0o600);
    const written = statSync(path.join(cache, file!)).mtimeMs;
    const again = bulwark(xdg, ['flags', 'list']);
    // The same answer but the moment it was read at.
    const untimed = (run: { stdout: string }) => run.stdout.replace(/read \S+\)/, 'read …)');
    expect([again.status, again.stderr, untimed(again)]).toEqual([0, '', untimed(first)]);
    // Read, not written again.
    expect(statSync(path.join(cache, file!)).mtimeMs).toBe(written);
  });

  it('a damaged cache is rejected and written anew; the answer is unchanged', () => {
    const xdg = path.join(root, 'damaged');
    const expected = bulwark(xdg, ['settings']);
    expect(expected.status).toBe(0);
    const cache = path.join(xdg, 'bulwark');
    const [file] = files(cache);
    writeFileSync(path.join(cache, file!), Buffer.alloc(4096, 7));
    expect(bulwark(xdg, ['settings'])).toEqual(expected);
    expect(statSync(path.join(cache, file!)).size).toBeGreaterThan(100_000);
  });

  it('no cache in a directory others may write to, nor with BULWARK_CODE_CACHE=off', () => {
    const open = path.join(root, 'open');
    mkdirSync(path.join(open, 'bulwark'), { recursive: true });
    chmodSync(path.join(open, 'bulwark'), 0o777);
    expect(bulwark(open, ['settings']).status).toBe(0);
    expect(files(path.join(open, 'bulwark'))).toEqual([]);
    const off = path.join(root, 'off');
    expect(bulwark(off, ['settings'], { BULWARK_CODE_CACHE: 'off' }).status).toBe(0);
    expect(files(path.join(off, 'bulwark'))).toEqual([]);
  });

  it('help and the version answer without the cache', () => {
    const xdg = path.join(root, 'help');
    const help = bulwark(xdg, ['--help']);
    expect([help.status, help.stdout]).toEqual([0, expect.stringContaining('Usage: bulwark')]);
    expect(bulwark(xdg, ['flags', '--help']).stdout).toContain('Usage: bulwark flags');
    expect(bulwark(xdg, ['--version']).stdout).toMatch(/^\d+\.\d+\.\d+/);
    expect(files(path.join(xdg, 'bulwark'))).toEqual([]);
  });

  it('a failing command keeps its exit code and message', () => {
    const bad = bulwark(path.join(root, 'bad'), ['flags', 'get', 'no.such.flag']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/no\.such\.flag/);
  });

  it('a server busy 5 s after its start writes its cache only once its event loop is quiet', async () => {
    const dir = path.join(root, 'busy', 'bulwark');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Busy ~70% of the time for 8 s (6 ms of work every 8 ms), then idle until it is stopped.
    const program = path.join(root, 'busy.cjs');
    writeFileSync(
      program,
      `const until = Date.now() + 8000;
      const timer = setInterval(() => {
        if (Date.now() > until) return clearInterval(timer), setInterval(() => {}, 1000);
        const end = performance.now() + 6;
        while (performance.now() < end);
      }, 8);`,
    );
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { runCached } from ${JSON.stringify(path.resolve('dist/code-cache.js'))}; runCached(${JSON.stringify(program)}, ${JSON.stringify(dir)});`,
      ],
      { stdio: 'ignore' },
    );
    try {
      const started = Date.now();
      // Past the 5 s after which an idle program writes it, still busy: not written.
      await new Promise((resolve) => setTimeout(resolve, 7_000));
      expect(files(dir)).toEqual([]);
      // Quiet from 8 s on: written within a moment.
      await expect.poll(() => files(dir).length, { timeout: 5_000, interval: 100 }).toBe(1);
      expect(Date.now() - started).toBeGreaterThan(7_900);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a server writes its cache while it runs and starts from it next time', async () => {
    const xdg = path.join(root, 'server');
    const cache = path.join(xdg, 'bulwark');
    /** Starts the demo app; resolves with its port once it listens, and a way to stop it. */
    const serve = async () => {
      const child = spawn(process.execPath, ['dist/app/server.js'], {
        env: {
          PATH: process.env['PATH'],
          XDG_CACHE_HOME: xdg,
          BULWARK_DATA_DIR: path.join(root, 'server-data'),
          PORT: '0',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const port = await new Promise<number>((resolve, reject) => {
        let err = '';
        child.stderr.on('data', (chunk: Buffer) => {
          err += chunk.toString();
          const match = /listening on http:\/\/[^\s]+:(\d+)/.exec(err);
          if (match !== null) resolve(Number(match[1]));
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
      });
      const stop = () =>
        new Promise<number | null>((resolve) => {
          child.once('exit', resolve);
          child.kill('SIGTERM');
        });
      return { port, stop };
    };
    const first = await serve();
    try {
      // Written 5 s after the start, while the server runs on.
      await expect.poll(() => files(cache).length, { timeout: 10_000, interval: 200 }).toBe(1);
    } finally {
      expect(await first.stop()).toBe(0);
    }
    const [file] = files(cache);
    const written = statSync(path.join(cache, file!)).mtimeMs;
    const second = await serve();
    try {
      const res = await fetch(`http://127.0.0.1:${second.port}/health/live`);
      expect(res.status).toBe(200);
    } finally {
      expect(await second.stop()).toBe(0);
    }
    expect(files(cache)).toEqual([file]);
    expect(statSync(path.join(cache, file!)).mtimeMs).toBe(written);
  }, 30_000);
});

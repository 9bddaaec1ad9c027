import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ConfigManager, type ConfigLogger, type ConfigManagerOptions } from '../src/config/index.js';
import { isBulwarkError, type BulwarkError } from '../src/errors/index.js';
import { serviceSchema } from './fixtures/config-schema.js';

const SECRET = 'hunter2-s3cr3t-pw';
const SECRET2 = 'swordfish-0th3r-pw';
const TOKEN = 'tok-9f8e7d6c5b4a';

const root = mkdtempSync(path.join(tmpdir(), 'bulwark-config-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const managers: ConfigManager<typeof serviceSchema>[] = [];
afterEach(async () => {
  for (const m of managers.splice(0)) await m.close();
});

/** A fresh directory with `name` holding `content` (no file when `undefined`). */
function fileIn(name: string, content?: string): string {
  const file = path.join(mkdtempSync(path.join(root, 't-')), name);
  if (content !== undefined) writeFileSync(file, content);
  return file;
}

/** A logger that keeps every line, to check what reaches logs. */
function captureLogger(): ConfigLogger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (obj: object, msg: string) => lines.push(JSON.stringify({ msg, ...obj }, errorReplacer));
  return { lines, info: keep, warn: keep, error: keep };
}

function errorReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? { ...value, message: value.message } : value;
}

function manager(
  file: string,
  opts: Partial<ConfigManagerOptions<typeof serviceSchema>> = {},
): ConfigManager<typeof serviceSchema> {
  const m = new ConfigManager({ schema: serviceSchema, file, env: {}, logger: captureLogger(), ...opts });
  managers.push(m);
  return m;
}

async function rejection(promise: Promise<unknown>): Promise<BulwarkError> {
  try {
    await promise;
  } catch (error) {
    if (isBulwarkError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

/** Resolves with the next value `subscribe` delivers, or rejects after `timeoutMs`. */
function next<E>(subscribe: (listener: (event: E) => void) => () => void, timeoutMs = 5000): Promise<E> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms`)), timeoutMs);
    const off = subscribe((event) => {
      clearTimeout(timer);
      off();
      resolve(event);
    });
  });
}

const baseJson = `{
  "name": "queue",
  "port": 8080,
  "db": {
    "host": "db.internal",
    "password": "${SECRET}"
  }
}
`;

describe('config: layers, explain, secrets', () => {
  it('merges defaults < file < env and explains the layer and source of each value', async () => {
    const file = fileIn('config.json', baseJson);
    const m = manager(file, {
      envPrefix: 'APP',
      env: { APP_DB_POOL_SIZE: '20', APP_DEBUG: 'true', OTHER: 'x' },
    });
    expect(await m.start()).toEqual({ revision: 1, from: 'file' });

    const config = m.get();
    expect(config.port).toBe(8080);
    expect(config.db.poolSize).toBe(20);
    expect(config.debug).toBe(true);
    expect(config.ratio).toBe(0.5);
    expect(config.tags).toEqual([]);
    const pool: number = m.get('db.poolSize');
    expect(pool).toBe(20);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.db)).toBe(true);
    expect(Object.isFrozen(config.tags)).toBe(true);

    expect(m.explain('port')).toEqual({ path: 'port', value: 8080, layer: 'file', source: `${file}:3` });
    expect(m.explain('db.host')).toEqual({
      path: 'db.host',
      value: 'db.internal',
      layer: 'file',
      source: `${file}:5`,
    });
    expect(m.explain('db.poolSize')).toEqual({
      path: 'db.poolSize',
      value: 20,
      layer: 'env',
      source: 'APP_DB_POOL_SIZE',
    });
    expect(m.explain('ratio')).toEqual({ path: 'ratio', value: 0.5, layer: 'default', source: 'schema' });
  });

  it('rejects environment values that do not convert strictly, naming every variable', async () => {
    const file = fileIn('config.json', '{}');
    const env = {
      APP_PORT: 'abc',
      APP_DEBUG: 'yes',
      APP_RATIO: '1.2.3',
      APP_TAGS: '[oops',
      APP_NAME: 'fine',
    };
    const error = await rejection(manager(file, { envPrefix: 'APP', env }).start());
    expect(error.code).toBe('BWK_ERR_CONFIG_INVALID');
    expect(error.statusCode).toBe(400);
    expect(error.details?.map((d) => d.field).sort()).toEqual([
      'APP_DEBUG',
      'APP_PORT',
      'APP_RATIO',
      'APP_TAGS',
    ]);
    expect(error.message).toContain('APP_PORT expected an integer, got "abc"');
    expect(error.message).toContain('APP_DEBUG expected true or false, got "yes"');

    // Converted values that break the schema are named by variable too.
    const range = await rejection(manager(file, { env: { PORT: '70000' } }).start());
    expect(range.details).toEqual([{ field: 'port', message: 'must be <= 65535 (PORT)' }]);
  });

  it('reads dotenv files: comments, export, quotes, JSON arrays, sources by line', async () => {
    const file = fileIn(
      'config.env',
      [
        '# Spin settings',
        'export PORT=8081',
        '',
        'DB_HOST="db.internal" # primary',
        "NAME='my queue'",
        'DEBUG=true',
        `TAGS='["a","b"]'`,
        'RATIO=0.25 # a comment',
        'DB_PASSWORD="with \\"quotes\\""',
      ].join('\n'),
    );
    const m = manager(file);
    await m.start();
    expect(m.get()).toMatchObject({
      port: 8081,
      name: 'my queue',
      debug: true,
      ratio: 0.25,
      tags: ['a', 'b'],
      db: { host: 'db.internal', poolSize: 5, password: 'with "quotes"' },
    });
    expect(m.explain('port').source).toBe(`${file}:2`);
    expect(m.explain('tags').source).toBe(`${file}:7`);
  });

  it('never shows a secret in redacted(), explain, history, diff, errors or logs', async () => {
    const file = fileIn('config.json', baseJson);
    const logger = captureLogger();
    const m = manager(file, { env: { API_TOKEN: TOKEN }, secrets: ['apiToken'], logger });
    await m.start();
    expect(m.get('db.password')).toBe(SECRET);
    expect(m.get('apiToken')).toBe(TOKEN);

    await m.set('db.password', SECRET2, { reason: 'rotate' });
    await m.set('port', 9000);
    const errors: unknown[] = [];
    errors.push(await rejection(m.set('db.password', 12 as unknown as string)));
    errors.push(await rejection(m.replace({ db: { host: 'h', poolSize: 0, password: SECRET } })));

    const changes: unknown[] = [];
    const invalid: unknown[] = [];
    m.onChange((event) => changes.push({ revision: event.revision, diff: event.diff }));
    m.onInvalid((error) =>
      invalid.push({ message: error.message, details: error.details, params: error.params }),
    );
    writeFileSync(file, baseJson.replace('"port": 8080', '"port": "nope"').replace(SECRET, SECRET2));
    await m.reload();
    writeFileSync(file, baseJson.replace(SECRET, `${SECRET}-new`));
    await m.reload();

    // A malformed dotenv line holding a secret is quoted without the value.
    const envFile = fileIn('config.env', `PORT=1\nDB_PASSWORD ${SECRET}\n`);
    const parse = await rejection(manager(envFile).start());
    expect(parse.message).toContain('config.env line 2: expected KEY=value, got "DB_PASSWORD [redacted]"');
    errors.push(parse);

    const outputs = JSON.stringify({
      redacted: m.redacted(),
      explain: [m.explain('db.password'), m.explain('db'), m.explain('apiToken')],
      history: await m.history(),
      diff: [await m.diff(1, 2), await m.diff(1, m.revision)],
      errors: errors.map((e) => ({ message: (e as Error).message, ...(e as object) })),
      changes,
      invalid,
      logs: logger.lines,
    });
    for (const secret of [SECRET, SECRET2, TOKEN]) expect(outputs).not.toContain(secret);
    expect(m.redacted()).toMatchObject({ apiToken: '[redacted]', db: { password: '[redacted]' } });
    expect(m.explain('db.password')).toMatchObject({ value: '[redacted]', layer: 'file' });
    expect(m.explain('apiToken')).toMatchObject({ value: '[redacted]', layer: 'env', source: 'API_TOKEN' });
    expect(await m.diff(1, 2)).toEqual([{ path: 'db.password', before: '[redacted]', after: '[redacted]' }]);
    expect(invalid).toHaveLength(1);
    expect(logger.lines.length).toBeGreaterThan(0);
  });
});

describe('config: parse and schema errors', () => {
  it('reports a malformed dotenv line with its exact line', async () => {
    const lines = [
      '# db',
      'DB_HOST=db',
      '',
      'PORT=8080',
      '# pool',
      'export NAME=x',
      'DB_POOL_SIZE 10',
      'DEBUG=true',
    ];
    const file = fileIn('config.env', lines.join('\n'));
    const error = await rejection(manager(file).start());
    expect(error.code).toBe('BWK_ERR_CONFIG_PARSE');
    expect(error.statusCode).toBe(400);
    expect(error.message).toBe('Cannot parse config.env line 7: expected KEY=value, got "DB_POOL_SIZE 10"');
    expect(error.params).toMatchObject({ line: 7 });

    const quote = await rejection(manager(fileIn('config.env', 'PORT=1\nNAME="unterminated\n')).start());
    expect(quote.message).toBe('Cannot parse config.env line 2: unterminated double-quoted value of NAME');
  });

  it.each([
    ['a missing comma', '{\n  "port": 8080\n  "name": "x"\n}', 3, 3],
    ['a trailing comma', '{\n  "port": 8080,\n}', 3, 1],
    ['a bad literal', '{\n  "debug": tru\n}', 2, 12],
    ['a missing value', '{\n  "name": }', 2, 11],
    ['an unquoted key', '{\n  port: 1\n}', 2, 3],
    ['a truncated file', '{\n  "db": {\n    "host": "x"', 3, 16],
    ['content after the object', '{}\n{}', 2, 1],
    ['a non-object', '[1, 2]', 1, 1],
  ])('reports JSON syntax errors with line and column: %s', async (_what, text, line, column) => {
    const error = await rejection(manager(fileIn('config.json', text)).start());
    expect(error.code).toBe('BWK_ERR_CONFIG_PARSE');
    expect(error.message).toContain(`config.json line ${line} column ${column}: `);
    expect(error.params).toMatchObject({ line, column });
  });

  it('names every bad field in one error, with the file line', async () => {
    const file = fileIn(
      'config.json',
      '{\n  "port": 0,\n  "debug": "yes",\n  "db": { "poolSize": "ten", "extra": 1 },\n  "colour": "red"\n}\n',
    );
    const error = await rejection(manager(file).start());
    expect(error.code).toBe('BWK_ERR_CONFIG_INVALID');
    const byField = Object.fromEntries((error.details ?? []).map((d) => [d.field, d.message]));
    expect(Object.keys(byField).sort()).toEqual(['colour', 'db.extra', 'db.poolSize', 'debug', 'port']);
    expect(byField['port']).toBe('must be >= 1 (config.json line 2)');
    expect(byField['db.poolSize']).toContain('config.json line 4');
    expect(error.message).toContain('port must be >= 1');

    const envFile = fileIn('config.env', 'NAME=x\nPORT=abc\nDB_POOL_SIZE=0\nCOLOUR=red\n');
    const dotenv = await rejection(manager(envFile).start());
    expect(dotenv.details).toEqual([
      { field: 'port', message: 'expected an integer, got "abc" (config.env line 2, PORT)' },
      { field: 'COLOUR', message: 'is not a field of the config (config.env line 4)' },
      { field: 'db.poolSize', message: 'must be >= 1 (config.env line 3)' },
    ]);
  });
});

describe('config: locked, validated, compare-and-set writes', () => {
  it('set with ifRevision bumps the revision; a stale revision conflicts', async () => {
    const file = fileIn('config.json', baseJson);
    const m = manager(file);
    await m.start();
    expect(m.revision).toBe(1);
    expect(await m.set('db.poolSize', 12, { ifRevision: 1, author: 'ops', reason: 'more load' })).toBe(2);
    expect(m.get('db.poolSize')).toBe(12);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ port: 8080, db: { poolSize: 12 } });
    expect(readFileSync(file, 'utf8')).toContain('\n  "db": {\n');

    const conflict = await rejection(m.set('port', 1, { ifRevision: 1 }));
    expect(conflict.code).toBe('BWK_ERR_CONFIG_CONFLICT');
    expect(conflict.statusCode).toBe(409);
    expect(conflict.params).toMatchObject({ expected: 1, actual: 2 });
    expect(m.get('port')).toBe(8080);

    // Another manager on the same file sees and checks the same revisions.
    const other = manager(file);
    await other.start();
    expect(other.revision).toBe(2);
    expect(await other.set('port', 8443, { ifRevision: 2 })).toBe(3);
    expect((await rejection(m.set('port', 1, { ifRevision: 2 }))).params).toMatchObject({ actual: 3 });
    // A hand edit nobody recorded yet is a revision too, so compare-and-set sees it.
    writeFileSync(file, readFileSync(file, 'utf8').replace('8443', '8444'));
    expect((await rejection(m.set('port', 1, { ifRevision: 3 }))).params).toMatchObject({ actual: 4 });
    expect((await m.history(1))[0]).toMatchObject({ revision: 4, author: 'file' });
  });

  it('an invalid value writes nothing: same bytes, same revision', async () => {
    const file = fileIn('config.json', baseJson);
    const m = manager(file);
    await m.start();
    const before = readFileSync(file);
    const error = await rejection(m.set('db.poolSize', 0));
    expect(error.code).toBe('BWK_ERR_CONFIG_INVALID');
    expect(error.details).toEqual([{ field: 'db.poolSize', message: 'must be >= 1' }]);
    await rejection(m.set('port', 'x' as unknown as number));
    await rejection(m.replace({ port: -1, debug: 'no' as unknown as boolean }));
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(m.revision).toBe(1);
    expect(await m.history()).toHaveLength(1);
    expect(m.get('db.poolSize')).toBe(5);
  });

  it('dotenv writes keep comments, order and export, and append new keys', async () => {
    const file = fileIn('config.env', '# service\nexport PORT=8080\n\n# database\nDB_HOST=db # primary\n');
    const m = manager(file);
    await m.start();
    await m.set('port', 9090);
    await m.set('name', 'my queue');
    await m.set('tags', ['a', 'b']);
    await m.set('db.host', undefined);
    expect(readFileSync(file, 'utf8')).toBe(
      '# service\nexport PORT=9090\n\n# database\nNAME="my queue"\nTAGS="[\\"a\\",\\"b\\"]"\n',
    );
    const fresh = manager(file);
    await fresh.start();
    expect(fresh.get()).toMatchObject({
      port: 9090,
      name: 'my queue',
      tags: ['a', 'b'],
      db: { host: 'localhost' },
    });
    expect(fresh.revision).toBe(m.revision);
  });

  it('replace writes the whole file; unknown fields are rejected with nothing written', async () => {
    const file = fileIn('config.json', baseJson);
    const m = manager(file);
    await m.start();
    expect(await m.replace({ port: 7000, tags: ['x'] }, { reason: 'reset' })).toBe(2);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ port: 7000, tags: ['x'] });
    expect(m.get()).toMatchObject({ port: 7000, name: 'spin', db: { host: 'localhost', password: '' } });
    const error = await rejection(m.replace({ port: 1, nope: true }));
    expect(error.details).toEqual([{ field: 'nope', message: 'is not a known field' }]);
    expect(m.revision).toBe(2);
  });

  it('validate checks a whole config as replace would and writes nothing: its changes, or every bad field', async () => {
    const file = fileIn('config.json', baseJson);
    const m = manager(file);
    await m.start();
    expect(m.validate({ name: 'queue', port: 7000, db: { password: SECRET2 } })).toEqual([
      { path: 'db.host', before: 'db.internal', after: 'localhost' },
      { path: 'db.password', before: '[redacted]', after: '[redacted]' },
      { path: 'port', before: 8080, after: 7000 },
    ]);
    let error: unknown;
    try {
      m.validate({ port: 0, db: { poolSize: 0 }, nope: 1 });
    } catch (thrown) {
      error = thrown;
    }
    expect(isBulwarkError(error, 'BWK_ERR_CONFIG_INVALID')).toBe(true);
    expect((error as BulwarkError).details?.map((d) => d.field).sort()).toEqual([
      'db.poolSize',
      'nope',
      'port',
    ]);
    expect(JSON.stringify(error)).not.toContain(SECRET);
    expect(readFileSync(file, 'utf8')).toBe(baseJson);
    expect(m.revision).toBe(1);
    // A dotenv file holds only the schema's leaves: anything else is named, nothing written.
    const env = manager(fileIn('service.env', 'PORT=8080\n'));
    await env.start();
    expect(env.validate({ port: 9000 })).toEqual([{ path: 'port', before: 8080, after: 9000 }]);
    expect(() => env.validate({ port: 9000, extra: { deep: 1 } })).toThrow(/extra/);
  });

  it('a lock held by another process times out with BWK_ERR_CONFIG_LOCKED, then writes once it is free', async () => {
    const file = fileIn('config.json', baseJson);
    const m = manager(file, { lock: { waitMs: 300 } });
    await m.start();
    const release = await lockfile.lock(file, { realpath: false, stale: 5000 });
    const error = await rejection(m.set('port', 1));
    expect(error.code).toBe('BWK_ERR_CONFIG_LOCKED');
    expect(error.statusCode).toBe(503);
    await release();
    expect(await m.set('port', 2)).toBe(2);
    expect(existsSync(`${file}.lock`)).toBe(false);
  });
});

describe('config: revisions and rollback', () => {
  it('keeps at most historyLimit revisions, newest first, one file each', async () => {
    const file = fileIn('config.json', baseJson);
    const m = manager(file, { historyLimit: 3 });
    await m.start();
    for (let i = 1; i <= 5; i++)
      await m.set('db.poolSize', 10 + i, { author: `op${i}`, reason: `step ${i}` });
    const history = await m.history();
    expect(history.map((r) => r.revision)).toEqual([6, 5, 4]);
    expect(history[0]).toMatchObject({
      author: 'op5',
      reason: 'step 5',
      diff: [{ path: 'db.poolSize', before: 14, after: 15 }],
    });
    expect(Date.parse(history[0]?.at ?? '')).not.toBeNaN();
    expect(await m.history(1)).toHaveLength(1);
    // Pages: the revisions below `before`.
    expect((await m.history(2, 6)).map((r) => r.revision)).toEqual([5, 4]);
    expect(await m.history(2, 4)).toEqual([]);
    const dir = path.join(path.dirname(file), '.config.json.revisions');
    expect(readdirSync(dir).sort()).toEqual(['000004.json', '000005.json', '000006.json']);
    const missing = await rejection(m.rollback(1));
    expect(missing.code).toBe('BWK_ERR_CONFIG_REVISION_NOT_FOUND');
    expect(missing.message).toContain('(kept: 4..6)');
  });

  it('diffs two revisions and rolls back to one as a new revision', async () => {
    const file = fileIn('config.json', baseJson);
    const m = manager(file);
    await m.start();
    const original = readFileSync(file, 'utf8');
    await m.set('port', 9000);
    await m.set('tags', ['blue']);
    expect(await m.diff(1, 3)).toEqual([
      { path: 'port', before: 8080, after: 9000 },
      { path: 'tags', before: [], after: ['blue'] },
    ]);
    expect(await m.rollback(1, { author: 'ops', reason: 'bad deploy' })).toBe(4);
    expect(readFileSync(file, 'utf8')).toBe(original);
    expect(m.get()).toMatchObject({ port: 8080, tags: [] });
    expect((await m.history(1))[0]).toMatchObject({
      revision: 4,
      author: 'ops',
      reason: 'bad deploy',
      diff: [
        { path: 'port', before: 9000, after: 8080 },
        { path: 'tags', before: ['blue'], after: [] },
      ],
    });
    expect((await rejection(m.rollback(3, { ifRevision: 3 }))).code).toBe('BWK_ERR_CONFIG_CONFLICT');
  });

  it('the revision survives a new manager; an edit made while down is recorded as the next one', async () => {
    const file = fileIn('config.json', baseJson);
    const first = manager(file);
    await first.start();
    await first.set('port', 9001);
    await first.set('port', 9002);
    await first.close();

    const second = manager(file);
    expect(await second.start()).toEqual({ revision: 3, from: 'file' });
    expect(await second.history()).toHaveLength(3);
    await second.close();

    writeFileSync(file, readFileSync(file, 'utf8').replace('9002', '9003'));
    const third = manager(file);
    expect(await third.start()).toEqual({ revision: 4, from: 'file' });
    expect((await third.history(1))[0]).toMatchObject({
      author: 'file',
      diff: [{ path: 'port', before: 9002, after: 9003 }],
    });
  });

  it('a missing file runs on defaults at revision 0 and the first write creates it', async () => {
    const file = fileIn('config.json');
    const m = manager(file);
    expect(await m.start()).toEqual({ revision: 0, from: 'defaults' });
    expect(m.get('port')).toBe(3000);
    expect(await m.set('port', 3001, { ifRevision: 0 })).toBe(1);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ port: 3001 });
  });
});

describe('config: last known good and hot reload', () => {
  it('start on a broken file falls back to the newest valid revision; with none it rejects', async () => {
    const file = fileIn('config.json', baseJson);
    const m = manager(file);
    await m.start();
    await m.set('port', 9100);
    await m.close();

    writeFileSync(file, '{\n  "port": 9200,\n  "name": \n}\n');
    const logger = captureLogger();
    const restarted = manager(file, { logger });
    const report = await restarted.start();
    expect(report).toMatchObject({ revision: 2, from: 'revision' });
    expect(report.error?.code).toBe('BWK_ERR_CONFIG_PARSE');
    expect(report.error?.message).toContain('config.json line 4 column 1');
    expect(restarted.get('port')).toBe(9100);
    expect(restarted.explain('port').source).toMatch(/config\.json@2:\d+$/);
    expect(logger.lines.join('\n')).toContain('using revision 2, the last good one');

    // Schema-invalid counts as broken too.
    writeFileSync(file, '{ "port": 0 }');
    expect(await manager(file).start()).toMatchObject({ revision: 2, from: 'revision' });

    const lonely = fileIn('config.json', '{ "port": 0 }');
    expect((await rejection(manager(lonely).start())).code).toBe('BWK_ERR_CONFIG_INVALID');
  });

  it('watch applies a valid edit as a new revision with a typed diff', async () => {
    const file = fileIn('config.json', baseJson);
    const m = manager(file);
    await m.start();
    m.watch();
    const changed = next(m.onChange.bind(m));
    writeFileSync(file, baseJson.replace('8080', '8181').replace('"queue"', '"renamed"'));
    const event = await changed;
    expect(event.revision).toBe(2);
    expect(event.diff).toEqual([
      { path: 'name', before: 'queue', after: 'renamed' },
      { path: 'port', before: 8080, after: 8181 },
    ]);
    const port: number = event.config.port;
    expect(port).toBe(8181);
    expect(m.get('port')).toBe(8181);
    expect((await m.history(1))[0]).toMatchObject({ revision: 2, author: 'file' });
  });

  it('watch reports an invalid edit with its line, keeps the active revision, then recovers', async () => {
    const file = fileIn('config.env', 'PORT=8080\nNAME=queue\nDB_POOL_SIZE=10\n');
    const logger = captureLogger();
    const m = manager(file, { logger });
    await m.start();
    m.watch();
    const invalid: BulwarkError[] = [];
    m.onInvalid((error) => invalid.push(error));
    const reported = next(m.onInvalid.bind(m));
    writeFileSync(file, 'PORT=9090\nNAME=queue\nDB_POOL_SIZE 10\n');
    const error = await reported;
    expect(error.code).toBe('BWK_ERR_CONFIG_PARSE');
    expect(error.message).toBe('Cannot parse config.env line 3: expected KEY=value, got "DB_POOL_SIZE 10"');
    expect(m.revision).toBe(1);
    expect(m.get('port')).toBe(8080);

    // The same content again is not reported (or logged) twice.
    writeFileSync(file, 'PORT=9090\nNAME=queue\nDB_POOL_SIZE 10\n');
    await m.reload();
    expect(invalid).toHaveLength(1);
    expect(logger.lines.filter((line) => line.includes('is invalid'))).toHaveLength(1);

    const changed = next(m.onChange.bind(m));
    writeFileSync(file, 'PORT=9090\nNAME=queue\nDB_POOL_SIZE=10\n');
    expect(await changed).toMatchObject({ revision: 2, diff: [{ path: 'port', before: 8080, after: 9090 }] });
  });

  it("another process's write reaches a watcher as the same revision, not a new one", async () => {
    const file = fileIn('config.json', baseJson);
    const writer = manager(file);
    const reader = manager(file, { watchPollMs: 100 });
    await writer.start();
    await reader.start();
    reader.watch();
    const changed = next(reader.onChange.bind(reader));
    expect(await writer.set('db.poolSize', 33, { author: 'ops' })).toBe(2);
    expect(await changed).toMatchObject({
      revision: 2,
      diff: [{ path: 'db.poolSize', before: 5, after: 33 }],
    });
    expect(await reader.history()).toHaveLength(2);
  });
});

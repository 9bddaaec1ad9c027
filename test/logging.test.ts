import { describe, expect, it } from 'vitest';
import type { FastifyBaseLogger } from 'fastify';
import {
  createLogger,
  lazyChildLoggerFactory,
  redactSecrets,
  writeRequestLine,
} from '../src/logging/index.js';
import { BatchingDestination } from '../src/logging/request-line.js';
import { LogCapture } from './helpers/app.js';

describe('redactSecrets', () => {
  it('returns objects without secrets as they are, uncopied', () => {
    const line = { method: 'GET', nested: { a: [1, { b: 2 }] } };
    expect(redactSecrets(line)).toBe(line);
  });

  it('censors secret keys at any depth and in arrays, without mutating the input', () => {
    const input = {
      user: { name: 'ann', Password: 'p1' },
      list: [{ token: 't1' }],
      headers: { authorization: 'Bearer x', cookie: 'c' },
    };
    const out = redactSecrets(input);
    expect(out).toEqual({
      user: { name: 'ann', Password: '[redacted]' },
      list: [{ token: '[redacted]' }],
      headers: { authorization: '[redacted]', cookie: '[redacted]' },
    });
    expect(input.user.Password).toBe('p1');
  });

  it('keeps an error recognisable when it carries a secret', () => {
    const error = Object.assign(new TypeError('bad'), { apiKey: 'k' });
    const out = redactSecrets({ err: error }).err as unknown as Record<string, unknown>;
    expect(out['apiKey']).toBe('[redacted]');
    expect(out['message']).toBe('bad');
    expect(String(out['stack'])).toContain('TypeError: bad');
  });
});

describe('redaction by name pattern', () => {
  it('censors names built from secret words, in any case and spelling', () => {
    const secret = 'S3CRET-value';
    const names = [
      'authToken',
      'AUTH_TOKEN',
      'x-auth-token',
      'dbPassword',
      'DB_PASSWD',
      'userPwd',
      'clientSecret',
      'x-api-key',
      'apiKey',
      'api.key',
      'adminKey',
      'privateKey',
      'signingKey',
      'sessionId',
      'x-session',
      'SENTRY_DSN',
      'cookies',
      'set-cookie',
      'proxy-authorization',
      'awsCredentials',
      'auth',
      'oauthVerifier',
      'jwt',
      'csrfToken',
      'accesstoken',
    ];
    const out = redactSecrets(Object.fromEntries(names.map((name) => [name, secret])));
    for (const name of names) expect(out[name], name).toBe('[redacted]');
  });

  it('keeps harmless names, counters and flags', () => {
    const line = {
      author: 'ann',
      authorId: 7,
      authored: 'yes',
      cacheKey: 'orders:1',
      key: 'bulwark.cache',
      monkey: 'george',
      tokenCount: 1234,
      sessionTtl: 60,
      passwordLength: 12,
      isPrivate: true,
      auth: null,
      sessions: 3,
    };
    expect(redactSecrets(line)).toBe(line);
    // A metadata-named field keeps a number only: a string there may be the secret itself.
    expect(redactSecrets({ tokenCount: 'abc' })).toEqual({ tokenCount: '[redacted]' });
  });

  it('reaches nested objects and error properties, and censors what is too deep to inspect', () => {
    const capture = new LogCapture();
    const logger = createLogger({ level: 'info', destination: capture });
    const err = Object.assign(new TypeError('bad token'), { authToken: 'tok-ERR-1', code: 'E_BAD' });
    logger.error({ err, request: { headers: { 'X-Upstream-Token': 'tok-HDR-2' } } }, 'failed');
    const inner = Object.assign(new Error('inner'), { dbPassword: 'pw-AGG-3' });
    logger.error({ err: new AggregateError([inner], 'several') }, 'failed');
    logger.info({ a: { b: { c: { d: { e: { f: { g: { h: { i: { password: 'pw-DEEP-4' } } } } } } } } } });
    logger.child({ sessionId: 'sid-CHILD-5' }).info('child line');
    const text = JSON.stringify(capture.lines);
    for (const secret of ['tok-ERR-1', 'tok-HDR-2', 'pw-AGG-3', 'pw-DEEP-4', 'sid-CHILD-5'])
      expect(text, secret).not.toContain(secret);
    const [first, second] = capture.lines as { err: Record<string, unknown> }[];
    expect(first?.err).toMatchObject({ type: 'TypeError', message: 'bad token', code: 'E_BAD' });
    expect(first?.err['authToken']).toBe('[redacted]');
    expect(second?.err['aggregateErrors']).toEqual([
      expect.objectContaining({ message: 'inner', dbPassword: '[redacted]' }),
    ]);
    expect(capture.lines[3]).toMatchObject({ sessionId: '[redacted]', msg: 'child line' });
    expect(err.authToken).toBe('tok-ERR-1'); // the caller's error is untouched
  });
});

describe('request lines', () => {
  it('the fast line is the line pino writes for the same fields', () => {
    const capture = new LogCapture();
    const logger = createLogger({ level: 'info', destination: capture, base: { service: 's' } });
    expect(writeRequestLine(logger, 'id-"1"', 'GET', '/a/:b', 200, 1.25)).toBe(true);
    logger
      .child({ reqId: 'id-"1"' })
      .info({ method: 'GET', route: '/a/:b', statusCode: 200, durationMs: 1.25 }, 'request');
    const [fast, slow] = capture.lines;
    expect(Object.keys(fast ?? {})).toEqual(Object.keys(slow ?? {}));
    expect({ ...fast, time: 0 }).toEqual({ ...slow, time: 0 });
  });

  it('writes nothing below the level, and falls back for foreign loggers', async () => {
    const capture = new LogCapture();
    const logger = createLogger({ level: 'warn', destination: capture });
    expect(writeRequestLine(logger, 'x', 'GET', '/', 200, 1)).toBe(true);
    expect(capture.lines).toHaveLength(0);
    const { default: pino } = await import('pino');
    expect(writeRequestLine(pino({ level: 'info' }, capture), 'x', 'GET', '/', 200, 1)).toBe(false);
  });

  it('batches appended lines and keeps them in order with direct writes', () => {
    const chunks: string[] = [];
    const sink = new BatchingDestination({ write: (chunk: string) => void chunks.push(chunk) }, 20);
    sink.append('a\n');
    sink.append('b\n');
    expect(chunks).toEqual([]);
    sink.write('pino\n');
    expect(chunks).toEqual(['a\nb\n', 'pino\n']);
    sink.append('x'.repeat(25) + '\n');
    expect(chunks).toHaveLength(3);
    sink.append('c\n');
    sink.flush();
    expect(chunks.at(-1)).toBe('c\n');
  });
});

describe('lazy request loggers', () => {
  it('create the pino child on first use only, with the request binding', () => {
    const capture = new LogCapture();
    const parent = createLogger({ level: 'info', destination: capture }) as unknown as FastifyBaseLogger;
    let children = 0;
    const counting = Object.create(parent) as FastifyBaseLogger;
    counting.child = (bindings, options) => {
      children += 1;
      return parent.child(bindings, options);
    };
    const lazy = lazyChildLoggerFactory(counting, { reqId: 'r-1' }, {});
    expect(children).toBe(0);
    expect(lazy.level).toBe('info');
    lazy.info({ n: 1 }, 'first');
    lazy.warn('second');
    expect(children).toBe(1);
    expect(capture.lines.map((l) => [l['reqId'], l['msg']])).toEqual([
      ['r-1', 'first'],
      ['r-1', 'second'],
    ]);
  });
});

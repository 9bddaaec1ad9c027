import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isBulwarkError } from '../src/errors/index.js';
import { loadSettings, redactSettings } from '../src/settings/index.js';

function problems(fn: () => unknown): { field: string; message: string }[] {
  try {
    fn();
  } catch (error) {
    if (isBulwarkError(error, 'BWK_ERR_SETTINGS_INVALID')) return error.details ?? [];
    throw error;
  }
  throw new Error('expected BWK_ERR_SETTINGS_INVALID');
}

describe('settings', () => {
  it('defaults with an empty environment', () => {
    const s = loadSettings({}, {});
    expect(s).toMatchObject({ port: 3000, host: '127.0.0.1', logLevel: 'info', shutdownTimeoutMs: 10_000 });
    expect(s.dataDir).toBe(path.resolve('data'));
    expect(s.databaseUrl).toBeUndefined();
  });

  it('reads and converts the environment; empty variables count as unset', () => {
    const s = loadSettings(
      {},
      { PORT: '8080', LOG_LEVEL: 'debug', REDIS_URL: 'redis://h:6379', DATABASE_URL: '' },
    );
    expect(s).toMatchObject({
      port: 8080,
      logLevel: 'debug',
      redisUrl: 'redis://h:6379',
      databaseUrl: undefined,
    });
  });

  it('options win over the environment', () => {
    expect(loadSettings({ port: 4000 }, { PORT: '8080' }).port).toBe(4000);
  });

  it('names every invalid variable at once, with the reason', () => {
    const found = problems(() =>
      loadSettings({}, { PORT: 'abc', DATABASE_URL: 'mysql://x/y', LOG_LEVEL: 'loud', HOST: 'a b' }),
    );
    expect(found.map((p) => p.field).sort()).toEqual(['DATABASE_URL', 'HOST', 'LOG_LEVEL', 'PORT']);
    expect(found.find((p) => p.field === 'PORT')?.message).toContain('"abc"');
    expect(found.find((p) => p.field === 'DATABASE_URL')?.message).toContain('postgres://');
  });

  it('rejects out-of-range ports and names options by their option name', () => {
    expect(problems(() => loadSettings({}, { PORT: '70000' }))[0]?.field).toBe('PORT');
    expect(problems(() => loadSettings({ port: -1 }, {}))[0]?.field).toBe('port');
  });

  it('never echoes a rejected secret or URL password', () => {
    const found = problems(() =>
      loadSettings(
        {},
        { BULWARK_ADMIN_KEY: 'short-secret', DATABASE_URL: 'postgres://u:hunter2@h/db with space' },
      ),
    );
    const text = JSON.stringify(found);
    expect(found).toHaveLength(2);
    expect(text).not.toContain('short-secret');
    expect(text).not.toContain('hunter2');
  });

  it('redacts secrets for display', () => {
    const s = loadSettings(
      {},
      { DATABASE_URL: 'postgres://u:hunter2@h:5432/db', BULWARK_ADMIN_KEY: 'k'.repeat(32) },
    );
    const shown = JSON.stringify(redactSettings(s));
    expect(shown).not.toContain('hunter2');
    expect(shown).not.toContain('k'.repeat(32));
    expect(shown).toContain('[set]');
  });

  it('masks secret-looking query parameters and a bare userinfo, shown or rejected', () => {
    const s = loadSettings(
      {},
      {
        DATABASE_URL: 'postgres://h/db?application_name=x&Password=hunter2&sslkey=%2Fk',
        REDIS_URL: 'redis://t0k@h',
      },
    );
    expect(redactSettings(s)).toMatchObject({
      databaseUrl: 'postgres://h/db?application_name=x&Password=***&sslkey=***',
      redisUrl: 'redis://***@h',
    });
    const rejected = JSON.stringify(
      problems(() => loadSettings({}, { DATABASE_URL: 'postgres://h/db?pass%77ord=hunter2 x' })),
    );
    expect(rejected).toContain('pass%77ord=***');
    expect(rejected).not.toContain('hunter2');
  });
});

describe('HTTP server limit settings', () => {
  it('have defaults that bound every request and connection', () => {
    expect(loadSettings({}, {})).toMatchObject({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 72_000,
      idleTimeoutMs: 120_000,
      maxConnections: 10_000,
      maxRequestsPerSocket: 0,
      bodyLimitBytes: 1_048_576,
    });
  });

  it('refuse a headers timeout above the request timeout; a default one shrinks to it', () => {
    const found = problems(() =>
      loadSettings({}, { BULWARK_HEADERS_TIMEOUT_MS: '5000', BULWARK_REQUEST_TIMEOUT_MS: '2000' }),
    );
    expect(found).toEqual([
      {
        field: 'BULWARK_HEADERS_TIMEOUT_MS',
        message: '5000 is invalid: must be at most BULWARK_REQUEST_TIMEOUT_MS (2000)',
      },
    ]);
    expect(loadSettings({ requestTimeoutMs: 2000 }, {}).headersTimeoutMs).toBe(2000);
  });

  it('refuse zero or out-of-range limits, naming each', () => {
    const found = problems(() =>
      loadSettings(
        {},
        {
          BULWARK_REQUEST_TIMEOUT_MS: '0',
          BULWARK_MAX_CONNECTIONS: '0',
          BULWARK_BODY_LIMIT_BYTES: '-1',
          BULWARK_IDLE_TIMEOUT_MS: '10',
        },
      ),
    );
    expect(found.map((p) => p.field).sort()).toEqual([
      'BULWARK_BODY_LIMIT_BYTES',
      'BULWARK_IDLE_TIMEOUT_MS',
      'BULWARK_MAX_CONNECTIONS',
      'BULWARK_REQUEST_TIMEOUT_MS',
    ]);
    expect(loadSettings({}, { BULWARK_MAX_REQUESTS_PER_SOCKET: '0' }).maxRequestsPerSocket).toBe(0);
  });
});

describe('settings conversion is strict', () => {
  it('rejects integers that are not plain digits, and treats whitespace-only as unset', () => {
    for (const PORT of ['true', '0x10', '1e3', '3000.5', '30 00']) {
      expect(problems(() => loadSettings({}, { PORT }))[0]?.field).toBe('PORT');
    }
    expect(loadSettings({}, { PORT: '   ' }).port).toBe(3000);
  });

  it('accepts any single-word NODE_ENV; only development changes behaviour', () => {
    expect(loadSettings({}, { NODE_ENV: 'staging' }).nodeEnv).toBe('staging');
    expect(problems(() => loadSettings({}, { NODE_ENV: 'two words' }))[0]?.field).toBe('NODE_ENV');
  });
});

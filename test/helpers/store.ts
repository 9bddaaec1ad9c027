import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { isBulwarkError, type ErrorCode } from '../../src/errors/index.js';
import { createStore } from '../../src/runtime/store.js';
import type { Store, StoreOptions } from '../../src/store/index.js';
import { dropSchema, startPostgres, uniqueSchema, type PostgresServer } from './postgres.js';

/** Starts one PostgreSQL server for the file (beforeAll) and stops it (afterAll). */
export function postgresForFile(): () => string {
  let server: PostgresServer | undefined;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (server === undefined) throw new Error('PostgreSQL test server not started');
    return server.url;
  };
}

/** The rejection of `promise`, asserting it is a catalogue error with `code`. */
export async function rejection(
  promise: Promise<unknown>,
  code: ErrorCode,
): Promise<Record<string, unknown>> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isBulwarkError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
  return isBulwarkError(error) ? { ...error.params, cause: error.cause } : {};
}

export function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'bulwark-store-'));
}

/** Per test: a fresh temp dir (SQLite) or schema (PostgreSQL), and every opened store closed after. */
export function storeFixture(engine: 'sqlite' | 'postgres', pgUrl: () => string) {
  let base: StoreOptions = {};
  let cleanup = (): Promise<void> => Promise.resolve();
  const opened: Store[] = [];
  beforeEach(async () => {
    if (engine === 'sqlite') {
      const dir = await tempDir();
      base = { dataDir: dir };
      cleanup = () => rm(dir, { recursive: true, force: true });
    } else {
      const url = pgUrl();
      const schema = uniqueSchema();
      base = { databaseUrl: url, schema };
      cleanup = () => dropSchema(url, schema);
    }
  });
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    await cleanup();
  });
  return {
    options: () => base,
    async open(extra: Partial<StoreOptions> = {}): Promise<Store> {
      const store = await createStore({ ...base, ...extra });
      opened.push(store);
      return store;
    },
  };
}

/** Bulwark's schema history, in the order it applies (one list for every test that names it). */
export const BULWARK_MIGRATIONS = [
  '0001_kv',
  '0002_audit',
  '0003_jobs',
  '0004_errors',
  '0005_metrics_history',
  '0006_alerts',
  '0007_access',
  '0008_instances',
  '0009_error_trends',
  '0010_jobs_take_idx',
];

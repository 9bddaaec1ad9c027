import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { appError, bulwarkError, catalogue, isAppError, isBulwarkError } from '../src/errors/index.js';
import { errorHandler } from '../src/http/error-handler.js';

describe('error catalogue', () => {
  const docs = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const documented = [...docs.matchAll(/^### (BWK_ERR_\w+)$/gm)].map((m) => m[1]);
  const codes = Object.keys(catalogue);

  it('docs/errors.md lists every code exactly once, and nothing else', () => {
    expect([...documented].sort()).toEqual([...codes].sort());
    expect(new Set(documented).size).toBe(documented.length);
  });

  it('every code is well formed, has a status and an area matching its name', () => {
    for (const [code, entry] of Object.entries(catalogue)) {
      expect(code).toMatch(/^BWK_ERR_[A-Z]+_[A-Z_]+$/);
      expect(code.startsWith(`BWK_ERR_${entry.area.toUpperCase()}_`)).toBe(true);
      expect(entry.status).toBeGreaterThanOrEqual(400);
      expect(entry.status).toBeLessThan(600);
      expect(docs).toMatch(new RegExp(`### ${code}\\n+HTTP ${entry.status}`));
    }
  });

  it('fills message templates, keeps the cause and is recognised by code', () => {
    const cause = new Error('boom');
    const error = bulwarkError('BWK_ERR_HTTP_NOT_FOUND', { method: 'GET', url: '/x' }, { cause });
    expect(error.message).toBe('Route GET /x not found');
    expect(error.cause).toBe(cause);
    expect(error.statusCode).toBe(404);
    expect(isBulwarkError(error)).toBe(true);
    expect(isBulwarkError(error, 'BWK_ERR_HTTP_NOT_FOUND')).toBe(true);
    expect(isBulwarkError(error, 'BWK_ERR_HTTP_INTERNAL')).toBe(false);
    expect(isBulwarkError(new Error('x'))).toBe(false);
    expect(isBulwarkError({ code: 'BWK_ERR_HTTP_NOT_FOUND' })).toBe(false);
  });
});

describe('app errors', () => {
  it('carry an app code and status, are told apart from catalogue errors, and refuse a bad code or status', () => {
    const error = appError('SPIN_ALREADY_VOTED', 409, 'You already voted', {
      details: [{ field: 'vote', message: 'final' }],
    });
    expect([error.code, error.statusCode, error.message]).toEqual([
      'SPIN_ALREADY_VOTED',
      409,
      'You already voted',
    ]);
    expect(isAppError(error)).toBe(true);
    expect(isAppError(error, 'SPIN_ALREADY_VOTED')).toBe(true);
    expect(isAppError(error, 'OTHER')).toBe(false);
    expect(isAppError(bulwarkError('BWK_ERR_HTTP_INTERNAL'))).toBe(false);
    expect(() => appError('lower_case', 400, 'x')).toThrow(/UPPER_SNAKE_CASE/);
    expect(() => appError('FINE_CODE', 200, 'x')).toThrow(/400–599/);
  });

  it('are answered by the error handler with their status and code, as catalogue errors are', async () => {
    const app = Fastify();
    app.setErrorHandler(errorHandler(false));
    app.get('/', async () => {
      throw appError('SHOP_OUT_OF_STOCK', 409, 'Sold out', {
        details: [{ field: 'sku', message: 'none left' }],
      });
    });
    const res = await app.inject({ url: '/' });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toEqual({
      error: {
        code: 'SHOP_OUT_OF_STOCK',
        message: 'Sold out',
        requestId: expect.any(String) as unknown,
        details: [{ field: 'sku', message: 'none left' }],
      },
    });
    await app.close();
  });
});

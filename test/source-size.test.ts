// Bulwark's sources stay readable in one sitting (issue 13): no file of src/ over 450 lines, and
// createBulwark() a short list of parts (under 120 lines).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const sources = (readdirSync('src', { recursive: true }) as string[])
  .filter((name) => name.endsWith('.ts'))
  .map((name) => path.join('src', name));

describe('the size of the sources', () => {
  it('no file of src/ is over 450 lines', () => {
    const long = sources
      .map((file) => ({ file, lines: readFileSync(file, 'utf8').split('\n').length - 1 }))
      .filter(({ lines }) => lines > 450);
    expect(sources.length).toBeGreaterThan(100);
    expect(long).toEqual([]);
  });

  it('createBulwark() is under 120 lines', () => {
    const lines = readFileSync('src/runtime/create.ts', 'utf8').split('\n');
    const start = lines.findIndex((line) => line.startsWith('export async function createBulwark'));
    const end = lines.findIndex((line, i) => i > start && line === '}');
    expect(start).toBeGreaterThan(-1);
    expect(end - start + 1).toBeLessThan(120);
  });
});

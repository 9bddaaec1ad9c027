// docs/architecture.md against the code: every part of Bulwark with what it needs, the option that
// configures it, its tool flags, health checks and migrations, and the graph of its dependencies.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { AnyPart } from '../src/parts/index.js';
import { PART_OPTIONS } from '../src/runtime/create.js';
import { bulwarkParts } from '../src/runtime/parts.js';
import { loadSettings } from '../src/settings/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DOC = 'docs/architecture.md';
const SECTION = 'Parts: how createBulwark starts Bulwark';

/** Default settings, and settings with every optional dependency configured (some flags need one). */
const settings = [
  loadSettings({}, {}),
  loadSettings({}, { REDIS_URL: 'redis://127.0.0.1:6379', SENTRY_DSN: 'https://key@sentry.example.com/1' }),
];
const parts = bulwarkParts({});

/** The text of one `## heading` section of the doc. */
function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  expect(start, `section "## ${heading}" in ${DOC}`).toBeGreaterThanOrEqual(0);
  const end = markdown.indexOf('\n## ', start + 1);
  return markdown.slice(start, end === -1 ? undefined : end);
}

/** The cells of a table row, trimmed. */
function cells(row: string): string[] {
  return row
    .split('|')
    .slice(1, -1)
    .map((cell) => cell.trim());
}

/** The table of `text` whose header has `column`: each row as header → cell. */
function tableWith(text: string, column: string): Map<string, Record<string, string>> {
  const tables = text.split(/\n(?!\|)/).map((block) => block.split('\n').filter((l) => l.startsWith('|')));
  const table = tables.find((rows) => cells(rows[0] ?? '').includes(column));
  expect(table, `a table with a "${column}" column in "## ${SECTION}"`).toBeDefined();
  const [header = '', , ...rows] = table ?? [];
  const names = cells(header);
  return new Map(
    rows.map((row) => {
      const values = cells(row);
      const record = Object.fromEntries(names.map((name, i) => [name, values[i] ?? '']));
      return [(values[0] ?? '').replace(/`/g, ''), record];
    }),
  );
}

/** The `code` spans of a cell (those that look like `shape`: not the settings and tables beside them). */
function ticked(cell: string | undefined, shape = /./): string[] {
  return [...(cell ?? '').matchAll(/`([^`]+)`/g)]
    .map((m) => m[1] ?? '')
    .filter((span) => shape.test(span))
    .sort();
}

/** Every tool flag key the part may declare, whatever is configured. */
function flagKeys(part: AnyPart): string[] {
  return [...new Set(settings.flatMap((s) => part.flags?.(s).map((flag) => flag.key) ?? []))].sort();
}

async function migrationNames(part: AnyPart): Promise<string[]> {
  const [sqlite, postgres] = await Promise.all([part.migrations?.('sqlite'), part.migrations?.('postgres')]);
  expect(Object.keys(postgres ?? {})).toEqual(Object.keys(sqlite ?? {}));
  return Object.keys(sqlite ?? {}).sort();
}

describe(`${DOC} and the parts`, () => {
  const doc = readFileSync(path.join(ROOT, DOC), 'utf8');

  it('lists every part and no other, with what it needs and the option that configures it', () => {
    const described = tableWith(section(doc, SECTION), 'Needs');
    expect([...described.keys()].sort()).toEqual(parts.map((p) => p.name).sort());
    for (const part of parts) {
      const row = described.get(part.name) ?? {};
      const needs = row['Needs'] === '—' ? [] : (row['Needs'] ?? '').split(/,\s*/);
      expect(needs.sort(), `needs of ${part.name}`).toEqual([...part.needs].sort());
      const option = (PART_OPTIONS as Record<string, string>)[part.name];
      expect(ticked(row['Option']), `option of ${part.name}`).toEqual(option === undefined ? [] : [option]);
    }
  });

  it('lists every tool flag, health check and migration of every part, and no other', async () => {
    const owned = tableWith(section(doc, SECTION), 'Migrations');
    expect([...owned.keys()].sort()).toEqual(parts.map((p) => p.name).sort());
    for (const part of parts) {
      const row = owned.get(part.name) ?? {};
      expect(ticked(row['Tool flags'], /^bulwark\./), `tool flags of ${part.name}`).toEqual(flagKeys(part));
      // Every part of Bulwark declares its checks, so a check it registers is one the docs list.
      expect(part.checks, `checks of ${part.name}`).toBeDefined();
      expect(ticked(row['Health checks'], /:/), `health checks of ${part.name}`).toEqual(
        [...(part.checks ?? [])].sort(),
      );
      expect(ticked(row['Migrations'], /^\d{4}_/), `migrations of ${part.name}`).toEqual(
        await migrationNames(part),
      );
    }
  });

  it('draws the graph of what each part needs', () => {
    const graph = /```mermaid\n([\s\S]*?)```/.exec(section(doc, SECTION))?.[1];
    expect(graph, 'a mermaid graph').toBeDefined();
    const edges = [...(graph ?? '').matchAll(/^\s*(\w+)\s*-->\s*(\w+)\s*$/gm)].map(
      (m) => `${m[1]} --> ${m[2]}`,
    );
    const expected = parts.flatMap((part) => part.needs.map((need) => `${need} --> ${part.name}`));
    expect(edges.sort()).toEqual(expected.sort());
  });

  it('describes the request path', () => {
    const request = section(doc, 'How a request flows');
    // The parts a request meets, by name.
    for (const name of ['rateLimiter', 'flags', 'rollouts', 'errors'])
      expect(request).toContain(`\`${name}\``);
  });
});

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { settingFields, type SettingName } from '../src/settings/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const names = Object.keys(settingFields) as SettingName[];

function read(relative: string): string {
  return readFileSync(path.join(ROOT, relative), 'utf8');
}

/** Markdown without fenced code blocks and inline code, where `[x](y)` is not a link. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');
}

/** The anchors of every heading in a markdown file. */
function anchorsIn(markdown: string): Set<string> {
  // Fenced blocks hold no headings; inline code in a heading is part of its anchor.
  const headings = markdown
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
    .matchAll(/^#{1,6}\s+(.+)$/gm);
  return new Set([...headings].map((m) => anchorOf(m[1] ?? '')));
}

/** The table rows (lines starting with `|`) of one `## heading` section, or of the whole file. */
function tableRows(markdown: string, heading?: string): string[] {
  let text = markdown;
  if (heading !== undefined) {
    const start = markdown.indexOf(`\n## ${heading}\n`);
    expect(start, `section "## ${heading}"`).toBeGreaterThanOrEqual(0);
    const end = markdown.indexOf('\n## ', start + 1);
    text = markdown.slice(start, end === -1 ? undefined : end);
  }
  return text.split('\n').filter((line) => line.trimStart().startsWith('|'));
}

/** The row whose first cell is `` `name` ``. */
function rowOf(rows: string[], name: string): string | undefined {
  return rows.find((row) => row.split('|')[1]?.trim() === `\`${name}\``);
}

/** The cells of a table row, trimmed. */
function cells(row: string): string[] {
  return row
    .split('|')
    .slice(1, -1)
    .map((cell) => cell.trim());
}

/** The cell of `row` under the header `column` (the table's first row). */
function cellUnder(rows: string[], row: string, column: string): string | undefined {
  const index = cells(rows[0] ?? '').indexOf(column);
  expect(index, `a "${column}" column`).toBeGreaterThanOrEqual(0);
  return cells(row)[index];
}

/** A setting's schema default as the docs write it: in backticks, or `unset` when it has none. */
function documentedDefault(name: SettingName): string {
  const fallback = (settingFields[name].schema as { default?: string | number }).default;
  return fallback === undefined ? 'unset' : `\`${fallback}\``;
}

const markdownFiles = [
  'README.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((file) => file.endsWith('.md'))
    .map((file) => `docs/${file}`),
];

describe('documentation', () => {
  it('README.md configuration table lists every setting with its default', () => {
    const rows = tableRows(read('README.md'), 'Configuration');
    for (const name of names) {
      const row = rowOf(rows, name);
      expect(row, `README.md configuration table row for ${name}`).toBeDefined();
      expect(cellUnder(rows, row ?? '', 'Default'), `default of ${name}`).toBe(documentedDefault(name));
    }
  });

  it('docs/configuration.md lists every setting with its option name and default', () => {
    const rows = tableRows(read('docs/configuration.md'), 'Settings');
    for (const name of names) {
      const row = rowOf(rows, name) ?? '';
      expect(row, `docs/configuration.md table row for ${name}`).not.toBe('');
      expect(cellUnder(rows, row, 'Option (`createBulwark`)'), `option of ${name}`).toBe(
        `\`${settingFields[name].option}\``,
      );
      expect(cellUnder(rows, row, 'Default'), `default of ${name}`).toBe(documentedDefault(name));
    }
  });

  it('documents no setting that does not exist', () => {
    const known = new Set<string>(names);
    for (const [file, rows] of [
      ['README.md', tableRows(read('README.md'), 'Configuration')],
      ['docs/configuration.md', tableRows(read('docs/configuration.md'), 'Settings')],
    ] as const) {
      const documented = rows
        .map((row) => /^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|/.exec(row)?.[1])
        .filter((name): name is string => name !== undefined);
      expect(
        documented.filter((name) => !known.has(name)),
        file,
      ).toEqual([]);
    }
  });

  it.each(markdownFiles)('every relative link in %s points to an existing file and heading', (file) => {
    const text = prose(read(file));
    const broken: string[] = [];
    for (const match of text.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = match[1] ?? '';
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
      const [filePart = '', anchor] = target.split('#');
      const resolved =
        filePart === ''
          ? path.join(ROOT, file)
          : path.resolve(ROOT, path.dirname(file), decodeURIComponent(filePart));
      if (!existsSync(resolved)) broken.push(target);
      else if (anchor !== undefined && anchor !== '' && resolved.endsWith('.md')) {
        if (!anchorsIn(readFileSync(resolved, 'utf8')).has(anchor)) broken.push(target);
      }
    }
    expect(broken, `broken links in ${file}`).toEqual([]);
  });
});

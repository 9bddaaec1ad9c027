import { bulwarkError } from '../errors/index.js';
import { REDACTED } from './types.js';

/** One `KEY=value` assignment of a dotenv file. */
export interface DotenvEntry {
  key: string;
  value: string;
  /** 1-based. */
  line: number;
}

const ASSIGNMENT = /^\s*(export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/;
const LEADING_KEY = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)/;

/**
 * Parses a dotenv file: `KEY=value` lines, blank lines and `#` comments, an optional `export `,
 * values bare (a ` #` starts a comment), in single quotes (literal) or in double quotes (`\n`, `\t`,
 * `\"`, `\\` escapes); one line per value. A later assignment of the same key wins.
 * Throws `BWK_ERR_CONFIG_PARSE` naming `label` and the line; a line starting with a secret's key
 * is quoted with its value redacted.
 */
export function parseDotenv(
  text: string,
  label: string,
  isSecretKey: (key: string) => boolean,
): DotenvEntry[] {
  const entries: DotenvEntry[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const fail = (detail: string): never => {
      throw bulwarkError('BWK_ERR_CONFIG_PARSE', {
        location: `${label} line ${line}`,
        detail,
        file: label,
        line,
      });
    };
    const match = ASSIGNMENT.exec(raw);
    if (match === null) {
      const key = LEADING_KEY.exec(raw)?.[1];
      const shown = key !== undefined && isSecretKey(key) ? `${key} ${REDACTED}` : trimmed;
      return fail(`expected KEY=value, got ${JSON.stringify(shown)}`);
    }
    const key = match[2] ?? '';
    const rest = match[3] ?? '';
    const quote = rest[0];
    let value: string;
    if (quote === '"' || quote === "'") {
      let end = 1;
      while (end < rest.length && rest[end] !== quote) end += quote === '"' && rest[end] === '\\' ? 2 : 1;
      if (end >= rest.length)
        return fail(`unterminated ${quote === '"' ? 'double' : 'single'}-quoted value of ${key}`);
      const after = rest.slice(end + 1).trim();
      if (after !== '' && !after.startsWith('#'))
        return fail(`unexpected text after the closing quote of ${key}`);
      const inner = rest.slice(1, end);
      value =
        quote === "'"
          ? inner
          : inner.replace(/\\(.)/g, (_whole, c: string) =>
              c === 'n' ? '\n' : c === 'r' ? '\r' : c === 't' ? '\t' : c,
            );
    } else {
      value = rest.replace(/(^|\s+)#.*$/, '').trim();
    }
    entries.push({ key, value, line });
  });
  return entries;
}

/** A value as written to a dotenv file: bare when safe, else double-quoted with escapes. */
export function formatDotenvValue(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  if (/^[A-Za-z0-9_.\-/:@+,]+$/.test(text)) return text;
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}"`;
}

/**
 * Edits a dotenv file in place: each changed key's last assignment is rewritten (keeping its
 * `export `), removed keys (value `undefined`) lose every assignment, new keys are appended.
 * Every other line (comments, blank lines, order) is kept.
 */
export function editDotenv(text: string, changes: Map<string, string | undefined>): string {
  const lines = text === '' ? [] : text.replace(/\r?\n$/, '').split(/\r?\n/);
  const lastIndex = new Map<string, number>();
  lines.forEach((line, index) => {
    const key = ASSIGNMENT.exec(line)?.[2];
    if (key !== undefined) lastIndex.set(key, index);
  });
  const drop = new Set<number>();
  const appended: string[] = [];
  for (const [key, value] of changes) {
    const index = lastIndex.get(key);
    if (value === undefined) {
      lines.forEach((line, i) => {
        if (ASSIGNMENT.exec(line)?.[2] === key) drop.add(i);
      });
    } else if (index === undefined) {
      appended.push(`${key}=${value}`);
    } else {
      const exported = ASSIGNMENT.exec(lines[index] ?? '')?.[1] === undefined ? '' : 'export ';
      lines[index] = `${exported}${key}=${value}`;
    }
  }
  const kept = lines.filter((_line, i) => !drop.has(i)).concat(appended);
  return kept.length === 0 ? '' : `${kept.join('\n')}\n`;
}

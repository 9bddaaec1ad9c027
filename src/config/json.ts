import { bulwarkError } from '../errors/index.js';
import { isPlainObject } from './paths.js';

/** A parsed JSON config file: its object and the line of every property, by dotted path. */
export interface ParsedJson {
  value: Record<string, unknown>;
  lines: Map<string, number>;
}

/**
 * Parses a JSON config file. The value comes from `JSON.parse`; a scanner that follows the same
 * grammar records the line of each property and, on a syntax error, where it is. Node's own
 * position is used when its message has one (Node 20 omits it for some errors, and its messages
 * may quote the text, which could hold a secret: they are never passed through verbatim).
 * Throws `BWK_ERR_CONFIG_PARSE` naming `label`, the line and the column.
 */
export function parseJson(text: string, label: string): ParsedJson {
  const lines = new Map<string, number>();
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (error) {
    const message = error instanceof Error ? error.message : '';
    // Only the fixed text before the position is kept: Node's messages may quote the input.
    const at = /^([^"]*?)(?: in JSON)? at position (\d+)/.exec(message);
    let pos = text.length;
    let detail = 'invalid JSON';
    try {
      new JsonScanner(text, lines).document();
    } catch (scan) {
      if (!(scan instanceof JsonSyntax)) throw scan;
      pos = scan.pos;
      detail = scan.detail;
    }
    if (at?.[1] !== undefined && at[2] !== undefined && Number(at[2]) !== pos) {
      pos = Number(at[2]);
      detail = at[1];
    }
    throw parseError(label, text, pos, detail, error);
  }
  if (!isPlainObject(value)) throw parseError(label, text, 0, 'the top level must be a JSON object');
  new JsonScanner(text, lines).document();
  return { value, lines };
}

/** 1-based line and column of a character offset. */
export function lineColumn(text: string, pos: number): { line: number; column: number } {
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  return { line, column: pos - before.lastIndexOf('\n') };
}

function parseError(label: string, text: string, pos: number, detail: string, cause?: unknown): Error {
  const { line, column } = lineColumn(text, pos);
  return bulwarkError(
    'BWK_ERR_CONFIG_PARSE',
    { location: `${label} line ${line} column ${column}`, detail, file: label, line, column },
    cause === undefined ? {} : { cause },
  );
}

class JsonSyntax extends Error {
  readonly pos: number;
  readonly detail: string;
  constructor(pos: number, detail: string) {
    super(detail);
    this.pos = pos;
    this.detail = detail;
  }
}

/** A JSON recogniser that records the line of each property; it builds no values. */
class JsonScanner {
  private pos = 0;
  private line = 1;
  private readonly text: string;
  private readonly lines: Map<string, number>;

  constructor(text: string, lines: Map<string, number>) {
    this.text = text;
    this.lines = lines;
  }

  document(): void {
    this.value('');
    this.space();
    if (this.pos < this.text.length) this.fail('unexpected content after the JSON value');
  }

  private fail(detail: string): never {
    throw new JsonSyntax(this.pos, detail);
  }

  private unexpected(): never {
    const c = this.text[this.pos];
    this.fail(c === undefined ? 'unexpected end of input' : `unexpected character ${JSON.stringify(c)}`);
  }

  private space(): void {
    for (;;) {
      const c = this.text[this.pos];
      if (c === '\n') this.line++;
      else if (c !== ' ' && c !== '\t' && c !== '\r') return;
      this.pos++;
    }
  }

  private value(path: string): void {
    this.space();
    const c = this.text[this.pos];
    if (c === '{') this.object(path);
    else if (c === '[') this.array(path);
    else if (c === '"') this.string();
    else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) this.number();
    else {
      for (const word of ['true', 'false', 'null']) {
        if (this.text.startsWith(word, this.pos)) {
          this.pos += word.length;
          return;
        }
      }
      this.unexpected();
    }
  }

  private object(path: string): void {
    this.pos++;
    this.space();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return;
    }
    for (;;) {
      this.space();
      if (this.text[this.pos] !== '"') this.fail('expected a property name in double quotes');
      const line = this.line;
      const key = this.string();
      const child = path === '' ? key : `${path}.${key}`;
      this.lines.set(child, line);
      this.space();
      if (this.text[this.pos] !== ':') this.fail("expected ':' after a property name");
      this.pos++;
      this.value(child);
      this.space();
      const c = this.text[this.pos];
      this.pos++;
      if (c === ',') continue;
      if (c === '}') return;
      this.pos--;
      this.fail("expected ',' or '}' after a property value");
    }
  }

  private array(path: string): void {
    this.pos++;
    this.space();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return;
    }
    for (let index = 0; ; index++) {
      this.value(`${path}.${index}`);
      this.space();
      const c = this.text[this.pos];
      this.pos++;
      if (c === ',') continue;
      if (c === ']') return;
      this.pos--;
      this.fail("expected ',' or ']' after an array element");
    }
  }

  private string(): string {
    const start = this.pos;
    this.pos++;
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) this.fail('unterminated string');
      if (c === '"') break;
      if (c === '\\') {
        const escape = this.text[this.pos + 1];
        if (escape === 'u' && /^[0-9a-fA-F]{4}$/.test(this.text.slice(this.pos + 2, this.pos + 6)))
          this.pos += 6;
        else if (escape !== undefined && '"\\/bfnrt'.includes(escape)) this.pos += 2;
        else this.fail('invalid escape in a string');
      } else if (c < ' ') {
        this.fail('control character in a string');
      } else {
        this.pos++;
      }
    }
    this.pos++;
    return JSON.parse(this.text.slice(start, this.pos)) as string;
  }

  private number(): void {
    const match = /-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
    match.lastIndex = this.pos;
    const found = match.exec(this.text);
    if (found === null || found[0] === '-') this.fail('invalid number');
    this.pos += found[0].length;
  }
}

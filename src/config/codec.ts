import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { bulwarkError, type FieldProblem } from '../errors/index.js';
import { editDotenv, formatDotenvValue, parseDotenv } from './dotenv.js';
import { parseJson } from './json.js';
import { flatten, getIn, isPlainObject, isSecretPath, setIn } from './paths.js';
import { convert, type SchemaInfo } from './schema.js';
import type { ConfigFormat } from './types.js';

/** A config file read from disk: its text and its layer of typed values. */
export interface FileState {
  /** `undefined` when the file does not exist. */
  text: string | undefined;
  /** The file layer: nested values, already converted to the schema's types. */
  layer: Record<string, unknown>;
  /** The line of each value in the file, by dotted path. */
  lines: Map<string, number>;
  /** Values that did not convert to their field's type (dotenv), or unknown keys. */
  problems: FieldProblem[];
}

/** The format of `file`, from its name: `*.json`, or `*.env` / `.env` / `.env.*`. */
export function formatOf(file: string): ConfigFormat {
  const base = path.basename(file);
  if (base.endsWith('.json')) return 'json';
  if (base.endsWith('.env') || base.startsWith('.env')) return 'dotenv';
  throw bulwarkError('BWK_ERR_CONFIG_OPTIONS', {
    detail: `cannot tell the format of ${base}: use a .json or .env file`,
  });
}

/** The text of the config file at `file`, or `undefined` when there is none. */
export async function readConfigText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Reads and writes one config file format against one schema. */
export class ConfigCodec {
  readonly format: ConfigFormat;
  /** The file's base name, used in messages. */
  readonly label: string;
  private readonly info: SchemaInfo;

  constructor(format: ConfigFormat, label: string, info: SchemaInfo) {
    this.format = format;
    this.label = label;
    this.info = info;
  }

  /** Parses file text (`undefined`: no file, an empty layer). Throws `BWK_ERR_CONFIG_PARSE`. */
  parse(text: string | undefined): FileState {
    if (text === undefined) return { text, layer: {}, lines: new Map(), problems: [] };
    if (this.format === 'json') {
      const { value, lines } = parseJson(text, this.label);
      return { text, layer: value, lines, problems: [] };
    }
    const entries = parseDotenv(text, this.label, (key) => {
      const leaf = this.info.byKey.get(key);
      return leaf !== undefined && isSecretPath(leaf.path, this.info.secrets);
    });
    let layer: Record<string, unknown> = {};
    const lines = new Map<string, number>();
    const problems: FieldProblem[] = [];
    for (const entry of entries) {
      const where = `${this.label} line ${entry.line}`;
      const leaf = this.info.byKey.get(entry.key);
      if (leaf === undefined) {
        problems.push({ field: entry.key, message: `is not a field of the config (${where})` });
        continue;
      }
      const converted = convert(leaf.kind, entry.value);
      if ('problem' in converted) {
        const shown = isSecretPath(leaf.path, this.info.secrets)
          ? ''
          : `, got ${JSON.stringify(entry.value)}`;
        problems.push({ field: leaf.path, message: `${converted.problem}${shown} (${where}, ${entry.key})` });
        continue;
      }
      layer = setIn(layer, leaf.path, converted.value);
      lines.set(leaf.path, entry.line);
    }
    return { text, layer, lines, problems };
  }

  /** Paths of `layer` the format cannot hold (dotenv holds only the schema's leaves). */
  unrepresentable(layer: Record<string, unknown>): FieldProblem[] {
    if (this.format === 'json') return [];
    const leaves = this.info.leaves.map((leaf) => leaf.path);
    return [...flatten(layer)]
      .filter(([_path, value]) => !(isPlainObject(value) && Object.keys(value).length === 0))
      .map(([p]) => p)
      .filter((p) => p !== '' && !leaves.some((leaf) => p === leaf || p.startsWith(`${leaf}.`)))
      .map((p) => ({
        field: p,
        message: `is not a field of the config (cannot be written to ${this.label})`,
      }));
  }

  /** The file text holding `layer`; dotenv keeps `previous`'s lines and edits only what changed. */
  render(previous: FileState, layer: Record<string, unknown>): string {
    if (this.format === 'json') return `${JSON.stringify(layer, null, 2)}\n`;
    const changes = new Map<string, string | undefined>();
    for (const leaf of this.info.leaves) {
      const before = getIn(previous.layer, leaf.path);
      const after = getIn(layer, leaf.path);
      const formatted = after === undefined ? undefined : formatDotenvValue(after);
      if (before === undefined && after === undefined) continue;
      if (before !== undefined && formatted === formatDotenvValue(before)) continue;
      changes.set(leaf.key, formatted);
    }
    return editDotenv(previous.text ?? '', changes);
  }
}

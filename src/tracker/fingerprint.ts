import { createHash } from 'node:crypto';
import path from 'node:path';

/** One parsed stack frame. */
export interface StackFrame {
  /** Function name, or '' for an anonymous one. */
  fn: string;
  /** File path (relative to the working directory for files under it) or URL. */
  file: string;
  line: number | undefined;
  column: number | undefined;
  /** Not a dependency (`node_modules`), not Node's own (`node:`), not native. */
  inApp: boolean;
}

/** How many in-app frames take part in the fingerprint. */
const FINGERPRINT_FRAMES = 3;
const MAX_MESSAGE = 1000;

// V8: "    at fn (file:line:col)" or "    at file:line:col"; browsers (Firefox, Safari): "fn@file:line:col".
const V8_FRAME = /^\s*at (?:(.+?) \()?(.*?):(\d+):(\d+)\)?$/;
const GECKO_FRAME = /^\s*(.*?)@(.*?):(\d+):(\d+)$/;

/** Frames of a V8 or Firefox/Safari stack trace, innermost first (lines that are not frames are skipped). */
export function parseStack(stack: string | undefined, cwd = process.cwd()): StackFrame[] {
  if (stack === undefined) return [];
  const frames: StackFrame[] = [];
  for (const line of stack.split('\n').slice(0, 100)) {
    const match = V8_FRAME.exec(line) ?? GECKO_FRAME.exec(line);
    if (match === null) continue;
    // An anonymous frame awaited ("at async /app/x.js:1:2") names no function: `async` is not part
    // of the file, else one frame would fingerprint differently once it is shown as awaited.
    let file = (match[1] === undefined ? match[2]?.replace(/^async /, '') : match[2]) ?? '';
    if (file.startsWith('file://')) file = file.slice(7);
    const external = file.includes('/node_modules/') || file.startsWith('node:') || file === 'native';
    if (!external && path.isAbsolute(file) && file.startsWith(cwd + path.sep))
      file = path.relative(cwd, file);
    frames.push({
      fn: (match[1] ?? '').replace(/^async /, '').trim(),
      file,
      line: Number(match[3]),
      column: Number(match[4]),
      inApp: !external && file !== '' && !file.startsWith('<anonymous>'),
    });
  }
  return frames;
}

/**
 * The message as a template: what varies between occurrences of one error (ids, numbers, quoted
 * values, e-mail addresses, URLs) becomes a placeholder, so `User 42 not found` and `User 7 not
 * found` group together.
 */
export function messageTemplate(message: string): string {
  return message
    .slice(0, MAX_MESSAGE)
    .replace(/\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b/g, '<email>')
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s'"`)]+/gi, '<url>')
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<uuid>')
    .replace(/"[^"]*"|'[^']*'|`[^`]*`/g, '<str>')
    .replace(/\b0x[0-9a-f]+\b/gi, '<hex>')
    .replace(/\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b/gi, '<hex>')
    .replace(/-?\b\d+(?:\.\d+)?\b/g, '<n>');
}

/** The frame an error is attributed to: `fn (file:line)` of the innermost in-app frame, or ''. */
export function culpritOf(frames: StackFrame[]): string {
  const frame = frames.find((f) => f.inApp);
  if (frame === undefined) return '';
  return `${frame.fn === '' ? '<anonymous>' : frame.fn} (${frame.file}:${frame.line ?? '?'})`;
}

/**
 * The group an error belongs to: a hash of its type, its top in-app frames (function and file, not
 * line numbers, which move with every release) and its message template. Without in-app frames
 * the message decides alone.
 */
export function fingerprintOf(type: string, frames: StackFrame[], template: string): string {
  const hash = createHash('sha256').update(type).update('\n');
  for (const frame of frames.filter((f) => f.inApp).slice(0, FINGERPRINT_FRAMES))
    hash.update(`${frame.fn}@${frame.file}\n`);
  return hash.update(template).digest('hex').slice(0, 20);
}

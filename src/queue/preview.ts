import type { Preview } from './types.js';

/** Bytes of a job's data or error that a list shows (the whole job is one request away). */
export const PREVIEW_BYTES = 1024;

/**
 * The start of `text` in at most `maxBytes` UTF-8 bytes, never cutting a character. `bytes` is the
 * whole text's size when it was measured elsewhere (the store sends only the start of a long
 * value); measured here otherwise.
 */
export function preview(text: string, maxBytes: number, bytes = Buffer.byteLength(text)): Preview {
  if (bytes <= maxBytes) return { text, bytes, truncated: false };
  let used = 0;
  let end = 0;
  for (const char of text) {
    const size = utf8Size(char.codePointAt(0) ?? 0);
    if (used + size > maxBytes) break;
    used += size;
    end += char.length;
  }
  return { text: text.slice(0, end), bytes, truncated: true };
}

/** UTF-8 bytes of one code point (a lone surrogate is written as U+FFFD: 3 bytes). */
function utf8Size(codePoint: number): number {
  if (codePoint < 0x80) return 1;
  if (codePoint < 0x800) return 2;
  if (codePoint < 0x10000) return 3;
  return 4;
}

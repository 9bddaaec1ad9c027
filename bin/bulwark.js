#!/usr/bin/env node
// The `bulwark` command, bundled by `npm run build` (which `npm install` runs). A command that does
// some work runs from one CommonJS file with V8's code cache (src/code-cache.ts), so that it
// starts without compiling itself again (~40% of a read command's time on Node 20); asking only for
// help or the version runs the ES module build, which loads only the help's code and is quicker
// still than reading the whole command's cache.
/* global process, URL */
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const helpOnly =
  args.length === 0 ||
  args.some((arg) => ['--help', '-h', '--version', '-V'].includes(arg)) ||
  args[0] === 'help';
if (helpOnly) await import('../dist/cli/main.js');
else {
  const { runCached } = await import('../dist/code-cache.js');
  runCached(fileURLToPath(new URL('../dist/cli/main.cjs', import.meta.url)));
}

// `npm run bench:doc` rewrites docs/benchmarks.md's result blocks from bench/results/*.json;
// `npm run bench:doc -- --check` only says whether the doc is current (exit 1 when not).
import { readFileSync, writeFileSync } from 'node:fs';
import { readResults, renderDoc } from './doc-render.js';

const FILE = 'docs/benchmarks.md';
const check = process.argv.includes('--check');
const doc = readFileSync(FILE, 'utf8');
const rendered = await renderDoc(doc, readResults(), FILE);
if (rendered === doc) {
  process.stdout.write(`${FILE} is current with bench/results/\n`);
} else if (check) {
  process.stderr.write(`${FILE} differs from bench/results/: run npm run bench:doc\n`);
  process.exitCode = 1;
} else {
  writeFileSync(FILE, rendered);
  process.stdout.write(`updated ${FILE} from bench/results/\n`);
}

// Cost of the per-request log line, in CPU µs per line, written to /dev/null; several rounds,
// alternating, medians. Peers: pino with `redact` wildcard paths (the usual way to mask secrets) and
// pino through Bulwark's logger; subject: Bulwark's fast request line.
//   npm run bench:logging        (defaults: ROUNDS=5 rounds of LINES=200000 lines; writes
//                                 bench/results/logging.json; a run with ROUNDS or LINES set writes no result)
import { openSync } from 'node:fs';
import pino, { type Logger } from 'pino';
import { BatchingDestination, createLogger, writeRequestLine } from '../src/logging/index.js';
import { describeMachine, median, knob, writeResult } from './lib.js';

const rounds = knob('ROUNDS', 5, 1);
const lines = knob('LINES', 200_000, 5000);
const fd = openSync('/dev/null', 'w');
const fields = { method: 'GET', route: '/users/:id', statusCode: 200, durationMs: 0.734 };
const WILDCARDS = ['password', 'token', 'apiKey', 'authorization', 'cookie'].flatMap((k) => [
  k,
  `*.${k}`,
  `*.*.${k}`,
]);

function pinoWithRedact(): Logger {
  return pino(
    {
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: WILDCARDS, censor: '[redacted]' },
    },
    pino.destination({ dest: fd, sync: true }),
  );
}

const cases: Record<string, (logger: Logger, i: number) => void> = {
  'pino child + redact wildcards': (logger, i) => logger.child({ reqId: `req-${i}` }).info(fields, 'request'),
  'pino child via Bulwark logger': (logger, i) => logger.child({ reqId: `req-${i}` }).info(fields, 'request'),
  'Bulwark fast request line': (logger, i) => {
    writeRequestLine(logger, `req-${i}`, fields.method, fields.route, fields.statusCode, fields.durationMs);
  },
};

function makeLogger(name: string): Logger {
  if (name === 'pino child + redact wildcards') return pinoWithRedact();
  return createLogger({
    level: 'info',
    destination: new BatchingDestination(pino.destination({ dest: fd, sync: true })),
  });
}

async function measure(name: string): Promise<number> {
  const logger = makeLogger(name);
  const write = cases[name]!;
  const start = process.cpuUsage();
  for (let i = 0; i < lines; i += 1) {
    write(logger, i);
    // Let the event loop turn now and then, as a server would.
    if (i % 1000 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  logger.flush();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / lines;
}

console.log(describeMachine(['pino']));
console.log(`${lines} lines per round, ${rounds} rounds alternating, CPU µs per line\n`);
const results = new Map<string, number[]>(Object.keys(cases).map((name) => [name, []]));
for (let round = 1; round <= rounds; round += 1) {
  const names = Object.keys(cases);
  if (round % 2 === 0) names.reverse();
  for (const name of names) results.get(name)!.push(await measure(name));
}
const usual = median(results.get('pino child + redact wildcards')!);
const fast = median(results.get('Bulwark fast request line')!);
const markdown = [
  `CPU µs per line written to \`/dev/null\`, ${lines.toLocaleString('en')} lines per round, ` +
    `${rounds} rounds alternating; medians.`,
  '',
  '| writer | median CPU µs/line |',
  '|---|---|',
  ...[...results].map(([name, samples]) => `| ${name} | ${median(samples).toFixed(2)} |`),
  '',
  `The fast line costs ${(fast / usual).toFixed(3)}× the usual pino + redact line.`,
].join('\n');
console.log(markdown);
writeResult(
  {
    benchmark: 'logging',
    packages: ['pino'],
    settings: { rounds, lines },
    markdown,
    data: Object.fromEntries(results),
  },
  ['ROUNDS', 'LINES'],
);

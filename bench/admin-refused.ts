// Cost of a refused admin request (no key) against a plain 404 on the same server, same run,
// alternating A/B rounds; also counts the audit rows the refused requests left in the store.
//   npm run bench:admin-refused     (defaults: ROUNDS=3 rounds × DURATION=5 s, CONNECTIONS=100;
//                                    writes bench/results/admin-refused.json)
//   ROUNDS=5 DURATION=10 CONNECTIONS=100 npm run bench:admin-refused   (other sizes: writes no result)
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeMachine, median, startServer, stopServer, knob, writeResult } from './lib.js';

const rounds = knob('ROUNDS', 3, 1);
const duration = knob('DURATION', 5, 1);
const connections = knob('CONNECTIONS', 100, 10);
const port = 3911;
const dataDir = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-'));
const targets = { refused: '/admin/api/audit', 'not found': '/no-such-route' } as const;

function auditRows(): number {
  const db = new Database(path.join(dataDir, 'bulwark.sqlite'), { readonly: true });
  try {
    return (db.prepare('select count(*) as n from bulwark_audit').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

console.log(describeMachine(['fastify', 'better-sqlite3', 'autocannon']));
console.log(`autocannon -c ${connections} -d ${duration}, ${rounds} rounds alternating\n`);
const server = await startServer('bench/servers/bulwark.ts', {
  PORT: String(port),
  BULWARK_DATA_DIR: dataDir,
  BULWARK_ADMIN_KEY: 'bench-admin-key-0123456789abcdef',
});
const results: Record<keyof typeof targets, number[]> = { refused: [], 'not found': [] };
let refusedRequests = 0;
try {
  for (const url of Object.values(targets))
    await autocannon({ url: `http://127.0.0.1:${port}${url}`, connections, duration: 1 }); // warm-up
  for (let round = 1; round <= rounds; round += 1) {
    // Alternate which goes first so drift on a noisy machine hits both sides alike.
    const order = Object.keys(targets) as (keyof typeof targets)[];
    if (round % 2 === 0) order.reverse();
    for (const which of order) {
      const result = await autocannon({
        url: `http://127.0.0.1:${port}${targets[which]}`,
        connections,
        duration,
      });
      results[which].push(result.requests.average);
      if (which === 'refused') refusedRequests += result.requests.total;
      console.log(
        `round ${round} ${which.padEnd(9)} ${Math.round(result.requests.average).toString().padStart(7)} req/s`,
      );
    }
  }
} finally {
  await stopServer(server);
}
const refused = median(results.refused);
const notFound = median(results['not found']);
const rows = auditRows();
const markdown = [
  `autocannon \`-c ${connections} -d ${duration}\`, ${rounds} rounds alternating, the same Bulwark server ` +
    `(bench/servers/bulwark.ts with an admin key); medians.`,
  '',
  '| request | median req/s |',
  '|---|---|',
  `| GET /no-such-route (404) | ${Math.round(notFound)} |`,
  `| GET /admin/api/audit without a key (401) | ${Math.round(refused)} |`,
  '',
  `Refused / 404 throughput ratio ${(refused / notFound).toFixed(3)}×; audit rows after ` +
    `${refusedRequests} measured refused requests (plus warm-up): ${rows}.`,
].join('\n');
console.log(`\n${markdown}`);
writeResult(
  {
    benchmark: 'admin-refused',
    packages: ['fastify', 'better-sqlite3', 'autocannon'],
    settings: { rounds, duration, connections },
    markdown,
    data: { reqPerSec: results, refusedRequests, auditRows: rows },
  },
  ['ROUNDS', 'DURATION', 'CONNECTIONS'],
);
rmSync(dataDir, { recursive: true, force: true });

// Start-up: from spawn to the first answer of GET /health/live, and the RSS right after, for the demo
// app (`node dist/app/server.js`, its bundle run with V8's code cache, src/code-cache.ts, on an
// existing SQLite store with every migration applied: a restart) against bare Fastify in plain
// JavaScript, in the same run. The first start of all (it migrates the store and writes the code
// cache, in a directory of this run's own) is shown on its own line; every later start, as under the
// supervisor after a crash, reads the cache. Rounds alternate which starts first; prints medians,
// min–max and the ratio. Targets: ≤ 2× bare Fastify's time and ≤ 1.5× its RSS.
//   npm run bench:startup        (default: ROUNDS=11 starts each; writes bench/results/startup.json;
//                                 a run with ROUNDS set writes no result)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeMachine, median, knob, writeResult } from './lib.js';

const ROUNDS = knob('ROUNDS', 11, 1);
const dir = mkdtempSync(path.join(tmpdir(), 'bulwark-bench-startup-'));
const env = {
  PATH: process.env['PATH'],
  HOME: process.env['HOME'],
  BULWARK_DATA_DIR: dir,
  XDG_CACHE_HOME: path.join(dir, 'cache'),
  PORT: '0',
};
const peers = [
  { name: 'bare Fastify', args: ['bench/fixtures/bare-fastify.js'] },
  { name: 'Bulwark demo app', args: ['dist/app/server.js'] },
];

/** Spawns, waits for the port on stderr, asks /health/live until it answers 200; then stops it. */
async function start(args: string[]): Promise<{ ms: number; rssMiB: number }> {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let err = '';
      child.stderr.on('data', (chunk: Buffer) => {
        err += chunk.toString();
        const match = /listening on http:\/\/[^\s]+:(\d+)/.exec(err);
        if (match !== null) resolve(Number(match[1]));
      });
      child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${err}`)));
    });
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${port}/health/live`).catch(() => undefined);
      if (res?.status === 200) break;
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    return { ms, rssMiB: rssKiB / 1024 };
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

try {
  const built = spawnSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('npm run build failed');
  // Creates and migrates the store, writes the code cache: later starts are restarts.
  const first = await start(peers[1]!.args);
  const samples = new Map(peers.map((p) => [p.name, { ms: [] as number[], rss: [] as number[] }]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const peer of round % 2 === 0 ? peers : [...peers].reverse()) {
      const { ms, rssMiB } = await start(peer.args);
      samples.get(peer.name)!.ms.push(ms);
      samples.get(peer.name)!.rss.push(rssMiB);
    }
    process.stderr.write(`round ${round + 1}/${ROUNDS}\n`);
  }
  console.log(describeMachine(['fastify']));
  const md = [
    `${ROUNDS} cold starts each, alternating; spawn → first 200 from \`/health/live\`; RSS then.`,
    '',
    '| process | median ms | min–max ms | × bare | RSS MiB (median) | × bare |',
    '|---|---|---|---|---|---|',
  ];
  const bare = samples.get('bare Fastify')!;
  md.push(
    `| Bulwark demo app, the first start (migrates, no code cache yet; once) | ${first.ms.toFixed(0)} | – | ${(first.ms / median(bare.ms)).toFixed(2)} | ${first.rssMiB.toFixed(0)} | ${(first.rssMiB / median(bare.rss)).toFixed(2)} |`,
  );
  for (const { name } of peers) {
    const { ms, rss } = samples.get(name)!;
    md.push(
      `| ${name} | ${median(ms).toFixed(0)} | ${Math.min(...ms).toFixed(0)}–${Math.max(...ms).toFixed(0)} | ${(median(ms) / median(bare.ms)).toFixed(2)} | ${median(rss).toFixed(0)} | ${(median(rss) / median(bare.rss)).toFixed(2)} |`,
    );
  }
  const markdown = md.join('\n');
  console.log(markdown);
  writeResult(
    {
      benchmark: 'startup',
      packages: ['fastify'],
      settings: { rounds: ROUNDS },
      markdown,
      data: { first, ...Object.fromEntries(samples) },
    },
    ['ROUNDS'],
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// The live streams of `npm run bench:spin`, held in a process of their own: 11,000 open sockets and
// their buffers would otherwise share the load client's event loop and heap, and the client's own
// pauses would be counted as the server's join latency. Told over IPC `{ base, tokens }`, it opens
// one stream per token (reporting progress, then `open`), and reports each match event as it
// arrives: `{ type: 'match', index, matchedAt, receivedAt }`, both times from this machine's clock.
import http from 'node:http';

export type HolderMessage =
  | { type: 'progress'; open: number }
  | { type: 'open' }
  | { type: 'match'; index: number; matchedAt: number; receivedAt: number };

const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const tell = (message: HolderMessage) => process.send?.(message);

/** Opens the stream of `token`; resolves once its first status arrived. */
function connect(base: string, token: string, index: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      `${base}/api/events`,
      { agent, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`stream ${index}: HTTP ${res.statusCode}`));
          res.resume();
          return;
        }
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (block.includes('event: status')) resolve();
            if (block.includes('event: match')) {
              const receivedAt = Date.now();
              const { at } = JSON.parse(block.slice(block.indexOf('data: ') + 6)) as { at: number };
              tell({ type: 'match', index, matchedAt: at, receivedAt });
            }
          }
        });
        res.on('error', () => undefined);
      },
    );
    req.on('error', reject);
  });
}

process.on('message', (message: { base: string; tokens: string[] }) => {
  void (async () => {
    const { base, tokens } = message;
    for (let i = 0; i < tokens.length; i += 500) {
      await Promise.all(tokens.slice(i, i + 500).map((token, j) => connect(base, token, i + j)));
      tell({ type: 'progress', open: Math.min(i + 500, tokens.length) });
    }
    tell({ type: 'open' });
  })().catch((error: unknown) => {
    process.stderr.write(`spin-streams: ${String(error)}\n`);
    process.exit(1);
  });
});
process.on('disconnect', () => {
  agent.destroy();
  process.exit(0);
});

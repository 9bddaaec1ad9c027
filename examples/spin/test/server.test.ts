// Spin as `npm start` runs it: the bundle (dist/spin/server.js, built by `npm install`) as a process
// on a fresh data directory. It prints the one-time console link and the banner, serves the flow a
// newcomer tries with curl (sign up two, join, watch the stream, get matched), and stops cleanly on
// SIGTERM.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listeningPort, spawnTs } from '../../../test/helpers/process.js';

const BUNDLE = 'dist/spin/server.js';
const dir = mkdtempSync(path.join(tmpdir(), 'spin-server-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Spin as npm start runs it', () => {
  it('prints the console link and the banner, matches two users over HTTP, stops cleanly', async () => {
    expect(existsSync(BUNDLE), `${BUNDLE} is missing: run npm run build`).toBe(true);
    // Its own temp dir: where the warm-up's scratch Spin keeps its store, gone once it listens.
    const temp = path.join(dir, 'tmp');
    mkdirSync(temp);
    const server = spawnTs(BUNDLE, [], {
      PORT: '0',
      BULWARK_DATA_DIR: path.join(dir, 'data'),
      LOG_LEVEL: 'info',
      TMPDIR: temp,
      SPIN_WARMUP_JOINS: '300',
    });
    try {
      const port = await listeningPort(server, /spin listening on http:\/\/127\.0\.0\.1:(\d+)/);
      // Warmed up before it listened, on a scratch store of its own that is gone.
      const warmed = (server.stdout() + server.stderr())
        .split('\n')
        .find((line) => line.includes('"warmed up"'));
      expect(JSON.parse(warmed ?? '{}')).toMatchObject({ joins: 300, answered: 300 });
      expect(readdirSync(temp)).toEqual([]);
      expect(server.stdout()).toMatch(/^Admin console: open http:\/\/127\.0\.0\.1:\d+\/admin\/login#token=/m);
      const base = `http://127.0.0.1:${port}`;
      const root = await fetch(base);
      expect(root.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(await root.text()).toContain('<title>Spin</title>');
      const signUp = async (displayName: string, gender: string, seeking: string[]) => {
        const res = await fetch(`${base}/api/users`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ displayName, gender, seeking }),
        });
        expect(res.status).toBe(201);
        return (await res.json()) as { token: string; user: { id: string } };
      };
      const { token: ann } = await signUp('Ann', 'woman', ['man']);
      const { token: bob, user: bobUser } = await signUp('Bob', 'man', ['woman']);
      const controller = new AbortController();
      const stream = await fetch(`${base}/api/events`, {
        headers: { authorization: `Bearer ${ann}` },
        signal: controller.signal,
      });
      for (const token of [ann, bob])
        expect(
          (
            await fetch(`${base}/api/queue/join`, {
              method: 'POST',
              headers: { authorization: `Bearer ${token}` },
            })
          ).status,
        ).toBe(200);
      let text = '';
      const decoder = new TextDecoder();
      for await (const chunk of stream.body as unknown as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk, { stream: true });
        if (text.includes('event: match')) break;
      }
      controller.abort();
      expect(text).toMatch(/event: match\ndata: \{"matchId":"[0-9a-f-]{36}"/);
      // Bob, not one of the warm-up's 300 men seeking women: none of them is in this queue.
      expect(text).toContain(`"partnerId":"${bobUser.id}"`);
    } finally {
      server.child.kill('SIGTERM');
    }
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.stdout() + server.stderr()).toContain('shut down cleanly');
  });

  it('refuses a bad SPIN_WARMUP_JOINS with exit 78, naming it, before it builds anything', async () => {
    const server = spawnTs(BUNDLE, [], {
      PORT: '0',
      BULWARK_DATA_DIR: path.join(dir, 'refused'),
      SPIN_WARMUP_JOINS: 'lots',
    });
    expect(await server.exited).toEqual({ code: 78, signal: null });
    expect(server.stderr()).toContain(
      'spin: refusing to start, invalid configuration (BWK_ERR_SETTINGS_INVALID):\n  SPIN_WARMUP_JOINS: must be a whole number of joins from 0 (no warm-up) to 100000, not "lots"',
    );
    expect(existsSync(path.join(dir, 'refused'))).toBe(false);
  });
});

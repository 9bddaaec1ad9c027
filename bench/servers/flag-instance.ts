// bench/flags.ts's instance: a Bulwark process (REDIS_URL and BULWARK_DATA_DIR from the environment)
// that reports every change of the flag `bench.toggle` to its parent over IPC, with the wall-clock
// time it saw it (all instances run on one machine, so the clocks are the same clock).
import { createBulwark } from '../../src/index.js';

const instance = await createBulwark({ logLevel: 'warn', defaultMetrics: false });
instance.flags.onChange((change) => {
  if (change.key !== 'bench.toggle') return;
  process.send?.({ type: 'changed', enabled: change.after?.enabled, at: Date.now() });
});
process.send?.({ type: 'ready' });
process.once('SIGTERM', () => {
  void instance.close().then(() => process.exit(0));
});

import { InvalidArgumentError, type Command } from 'commander';
import { bulwarkError } from '../errors/index.js';
import { loadSettings } from '../settings/index.js';
import { createStore } from '../runtime/store.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

async function migrate(direction: 'up' | 'down' | 'status', steps: number): Promise<void> {
  const settings = loadSettings();
  const store = await createStore({
    databaseUrl: settings.databaseUrl,
    dataDir: settings.dataDir,
    migrate: false,
  });
  try {
    console.log(`store: ${store.engine}${store.engine === 'sqlite' ? ` (${settings.dataDir})` : ''}`);
    if (direction === 'status') {
      for (const m of await store.migrations.status()) {
        const when =
          m.executedAt === undefined ? 'pending' : `applied ${new Date(m.executedAt).toISOString()}`;
        console.log(`  ${m.name}  ${when}${m.foreign ? ' (by a part this command does not include)' : ''}`);
      }
      return;
    }
    const names = direction === 'up' ? await store.migrations.up() : await store.migrations.down(steps);
    if (names.length === 0)
      console.log(direction === 'up' ? 'nothing to apply: up to date' : 'nothing to revert');
    for (const name of names) console.log(`  ${direction === 'up' ? 'applied ' : 'reverted'} ${name}`);
  } finally {
    await store.close();
  }
}

/** Defines `bulwark migrate up|down|status` on the store of the environment's settings. */
export function defineMigrateCommand(command: Command): void {
  command
    .argument('<action>', 'up | down | status')
    .option('--steps <n>', 'with down: how many migrations to revert', positiveInt, 1)
    .addHelpText(
      'after',
      '\nExamples:\n  bulwark migrate status\n  bulwark migrate up\n  bulwark migrate down --steps 2',
    )
    .action(async (action: string, options: { steps: number }) => {
      if (action !== 'up' && action !== 'down' && action !== 'status') {
        throw bulwarkError('BWK_ERR_CLI_USAGE', {
          detail: `<action> must be up, down or status (got "${action}")`,
        });
      }
      await migrate(action, options.steps);
    });
}

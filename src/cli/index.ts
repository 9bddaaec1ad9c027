import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { bulwarkError, isBulwarkError } from '../errors/index.js';
import { VERSION } from '../runtime/create.js';
import { loadSettings, redactSettings, settingFields } from '../settings/index.js';
import { createStore } from '../store/index.js';
import { registerAlertsCommand } from './alerts.js';
import { registerConfigCommand } from './config.js';
import { registerFlagsCommand } from './flags.js';
import { registerQueuesCommand } from './queues.js';
import { table } from './shared.js';
import { registerSuperviseCommand } from './supervise.js';

/** Prints a Bulwark error (each bad field on its own line) and returns exit code 1. */
function report(error: unknown): number {
  if (isBulwarkError(error)) {
    if (error.details === undefined) console.error(`bulwark: ${error.code}: ${error.message}`);
    else {
      console.error(`bulwark: ${error.code}:`);
      for (const problem of error.details) console.error(`  ${problem.field}: ${problem.message}`);
    }
  } else {
    console.error('bulwark:', error instanceof Error ? error.message : error);
  }
  return 1;
}

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
        console.log(`  ${m.name}  ${when}`);
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

/** Builds the `bulwark` command line. */
export function buildCli(): Command {
  const program = new Command('bulwark')
    .description('Bulwark: a stability layer for Node.js web services.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('migrate')
    .description('apply, revert or list store migrations (SQLite, or PostgreSQL with DATABASE_URL)')
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

  program
    .command('settings')
    .description('validate the environment and print the settings Bulwark would use (secrets masked)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `\nVariables:\n${Object.entries(settingFields)
        .map(([name, f]) => `  ${name.padEnd(28)} ${f.doc}`)
        .join('\n')}`,
    )
    .action((options: { json?: boolean }) => {
      const settings = redactSettings(loadSettings());
      if (options.json === true) console.log(JSON.stringify(settings, null, 2));
      else console.log(table(Object.entries(settings).map(([key, value]) => [key, shownSetting(value)])));
    });

  registerQueuesCommand(program);
  registerFlagsCommand(program);
  registerConfigCommand(program);
  registerSuperviseCommand(program);
  registerAlertsCommand(program);

  return program;
}

/** Runs the CLI; resolves with the exit code. */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildCli().exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    return report(error);
  }
}

/** A setting's value as `bulwark settings` prints it: lists comma-separated, unset as `(unset)`. */
function shownSetting(value: unknown): string {
  if (value === undefined) return '(unset)';
  if (Array.isArray(value)) return value.join(', ');
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

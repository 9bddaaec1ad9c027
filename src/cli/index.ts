import { Command, CommanderError } from 'commander';
import { isBulwarkError } from '../errors/index.js';
import { VERSION } from '../version.js';

/**
 * The commands, each defined by a module loaded only when the command runs (or its help is asked
 * for): `bulwark --help` loads none of them, `bulwark flags list` only the flags command's.
 */
const COMMANDS: Record<string, { summary: string; define: () => Promise<(command: Command) => void> }> = {
  migrate: {
    summary: 'apply, revert or list store migrations (SQLite, or PostgreSQL with DATABASE_URL)',
    define: async () => (await import('./migrate.js')).defineMigrateCommand,
  },
  settings: {
    summary: 'validate the environment and print the settings Bulwark would use (secrets masked)',
    define: async () => (await import('./settings.js')).defineSettingsCommand,
  },
  queues: {
    summary: 'inspect and operate the job queues (the same store as the server)',
    define: async () => (await import('./queues.js')).defineQueuesCommand,
  },
  flags: {
    summary: 'inspect and change feature flags and kill switches (the same store as the server)',
    define: async () => (await import('./flags.js')).defineFlagsCommand,
  },
  config: {
    summary: "inspect, validate and change a service's config file (ConfigManager)",
    define: async () => (await import('./config.js')).defineConfigCommand,
  },
  supervise: {
    summary:
      'run an app under the Bulwark supervisor (restarts, hang detection, graded recovery, cluster mode)',
    define: async () => (await import('./supervise.js')).defineSuperviseCommand,
  },
  alerts: {
    summary: 'alert rules, their states and notifications (the rules and receivers of BULWARK_ALERTS_FILE)',
    define: async () => (await import('./alerts.js')).defineAlertsCommand,
  },
  keys: {
    summary: 'admin keys of the admin API and console: create (viewer or operator), list, revoke',
    define: async () => (await import('./keys.js')).defineKeysCommand,
  },
};

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

/** Builds the `bulwark` command line: every command named, each defined when it is dispatched. */
export function buildCli(): Command {
  const program = new Command('bulwark')
    .description('Bulwark: a stability layer for Node.js web services.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)');
  for (const [name, { summary }] of Object.entries(COMMANDS)) program.command(name).description(summary);
  // Runs before a command parses its arguments or prints its help: its options and subcommands exist by then.
  program.hook('preSubcommand', async (_program, command) => {
    const define = await COMMANDS[command.name()]?.define();
    define?.(command);
  });
  return program;
}

/** Runs the CLI; resolves with the exit code. */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildCli().exitOverride();
  try {
    // `bulwark help <command>` prints the command's help without dispatching to it: define it first.
    const named = argv[0] === 'help' ? program.commands.find((c) => c.name() === argv[1]) : undefined;
    if (named !== undefined) (await COMMANDS[named.name()]?.define())?.(named);
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    return report(error);
  }
}

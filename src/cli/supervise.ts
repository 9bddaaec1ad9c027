import path from 'node:path';
import { Option, type Command } from 'commander';
import { bulwarkError } from '../errors/index.js';
import { requestSupervisor } from '../supervised/control-client.js';
import { flagOf, resolveSuperviseOptions, superviseSchema } from '../supervisor/options.js';
import { runSupervisor } from '../supervisor/run.js';
import { table } from './shared.js';

/** Options the CLI takes as flags: every schema field but the command and the env map. */
const FLAGGED = Object.entries(superviseSchema.properties).filter(
  ([key]) => key !== 'command' && key !== 'env' && key !== 'echo',
) as [string, { description?: string; default?: unknown; type?: unknown }][];

/** The value placeholder in `--help`: `<ms>`, `<mb>`, `<path>`, ... */
function placeholder(key: string, schema: { type?: unknown }): string {
  if (key.endsWith('Ms')) return 'ms';
  if (key.endsWith('Mb')) return 'mb';
  if (key.endsWith('Path')) return 'path';
  if (key.endsWith('Dir')) return 'dir';
  if (key.endsWith('Host') || key === 'host') return 'host';
  if (key.endsWith('ExitCodes')) return 'codes';
  if (key === 'trustedProxies') return 'addresses';
  if (key === 'balance') return 'socket|round-robin|proxy';
  if (key.endsWith('Percent')) return 'percent';
  if (key.endsWith('At')) return 'fraction';
  if (key.endsWith('Bytes')) return 'bytes';
  return schema.type === 'integer' ? 'n' : 'value';
}

/** The state directory given to a subcommand, or to `supervise` before it (`supervise --state-dir d status`). */
function stateDirOf(command: Command): string {
  const options = command.optsWithGlobals<{ stateDir?: string }>();
  if (options.stateDir !== undefined) return path.resolve(options.stateDir);
  const dataDir = process.env['BULWARK_DATA_DIR'];
  return path.resolve(dataDir !== undefined && dataDir.trim() !== '' ? dataDir : 'data', 'supervisor');
}

function ago(iso: unknown): string {
  if (typeof iso !== 'string') return '-';
  const ms = Date.now() - Date.parse(iso);
  if (ms < 60_000) return `${Math.round(ms / 1000)}s ago`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)}m ago`;
  return `${Math.round(ms / 3_600_000)}h ago`;
}

function mib(bytes: unknown): string {
  return typeof bytes === 'number' ? `${Math.round(bytes / 1048576)} MiB` : '-';
}

interface CrashView {
  at: string;
  slot: number;
  reason: string;
  exitCode: number | null;
  signal: string | null;
  uptimeMs: number;
  rssAtDeath?: number;
  reportPath?: string;
  lastLines: string[];
}

/** Prints a supervisor status (live or persisted) for people. */
function printStatus(status: Record<string, unknown>, live: boolean, lines: number): void {
  const instances = (status['instances'] ?? []) as Record<string, unknown>[];
  console.log(
    `supervisor: ${live ? `running (pid ${String(status['pid'])}, ${String(status['state'])})` : 'not running (last persisted state)'}`,
  );
  console.log(
    `mode: ${String(status['mode'])}${typeof status['balance'] === 'string' ? ` (balance ${status['balance']})` : ''}, port ${String(status['port'])}, command: ${(status['command'] as string[] | undefined)?.join(' ') ?? '-'}`,
  );
  console.log('');
  console.log(
    table([
      ['slot', 'state', 'pid', 'port', 'up since', 'restarts', 'rss', 'cpu', 'heartbeat'],
      ...instances.map((i) => [
        String(i['slot']),
        String(i['state']),
        String((i['pid'] as number | undefined) ?? '-'),
        String((i['port'] as number | undefined) ?? '-'),
        ago(i['readyAt'] ?? i['startedAt']),
        `${String(i['restarts'])} (${String(i['restartsInWindow'])} in window)`,
        mib(i['rss']),
        typeof i['cpu'] === 'number' ? `${Math.round(i['cpu'])}%` : '-',
        i['heartbeat'] === true ? 'yes' : 'no',
      ]),
    ]),
  );
  const reload = status['lastReload'] as { ok: boolean; at: string; detail: string } | undefined;
  if (reload !== undefined)
    console.log(`\nlast reload: ${reload.ok ? 'ok' : 'ROLLED BACK'} ${ago(reload.at)}: ${reload.detail}`);
  const crashes = ((status['crashes'] ?? []) as CrashView[]).slice(-5).reverse();
  if (crashes.length > 0) {
    console.log('\nrecent crashes (newest first):');
    for (const crash of crashes) {
      const how = crash.signal !== null ? `signal ${crash.signal}` : `exit code ${String(crash.exitCode)}`;
      console.log(
        `  ${crash.at}  slot ${crash.slot}  ${crash.reason}  ${how}  up ${Math.round(crash.uptimeMs / 1000)}s  rss ${mib(crash.rssAtDeath)}`,
      );
      if (crash.reportPath !== undefined) console.log(`    report: ${crash.reportPath}`);
      for (const line of crash.lastLines.slice(-lines)) console.log(`    | ${line}`);
    }
  }
  const recoveries = ((status['recoveries'] ?? []) as Record<string, unknown>[]).slice(-5);
  if (recoveries.length > 0) {
    console.log('\nrecent recovery steps:');
    for (const r of recoveries)
      console.log(
        `  ${String(r['at'])}  slot ${String(r['slot'])}  ${String(r['resource'])} ${String(r['step'])}  before ${String(r['before'])}  after ${String((r['after'] as number | undefined) ?? '-')}  ${r['helped'] === true ? 'helped' : r['helped'] === false ? 'did not help' : ''}`,
      );
  }
}

/**
 * Defines `bulwark supervise` to `program`: run an app under the supervisor, and `status`, `reload`,
 * `stop` against a running one (through its control socket in the state directory).
 */
export function defineSuperviseCommand(supervise: Command): void {
  supervise
    .argument('[command...]', 'the app command, after --')
    .option('--config <file>', 'JSON file with the same options (flags override it)')
    .option('--no-echo', "do not copy the app's output to this terminal (it still goes to the log files)")
    .option('--debug', 'log every supervisor event');
  for (const [key, schema] of FLAGGED) {
    const description = schema.description ?? key;
    const fallback =
      schema.default === undefined || description.includes('(default')
        ? ''
        : ` (default ${JSON.stringify(schema.default)})`;
    supervise.addOption(
      new Option(`${flagOf(key)} <${placeholder(key, schema)}>`, `${description}${fallback}`),
    );
  }
  supervise.addHelpText(
    'after',
    [
      '',
      'Examples:',
      '  bulwark supervise -- node dist/app/server.js',
      '  bulwark supervise --instances 2 --port 3000 --max-memory-mb 512 -- node dist/app/server.js',
      '  bulwark supervise status',
      '  bulwark supervise reload        (or: kill -HUP <supervisor pid>)',
      '',
      'Every option can also come from --config (JSON, same names in camelCase). See docs/supervisor.md.',
    ].join('\n'),
  );
  supervise.action(async (command: string[], raw: Record<string, unknown>) => {
    const { config, debug, ...rest } = raw as { config?: string; debug?: boolean } & Record<string, unknown>;
    const cli: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(rest)) if (value !== undefined) cli[key] = value;
    if (rest['echo'] === true) delete cli['echo'];
    if (command.length > 0) cli['command'] = command;
    const options = resolveSuperviseOptions({ cli, ...(config === undefined ? {} : { configFile: config }) });
    const code = await runSupervisor(options, debug === true ? 'debug' : 'info');
    if (code !== 0) process.exitCode = code;
  });

  supervise
    .command('status')
    .description(
      'the running supervisor’s instances, restarts, recent crashes (with their last log lines) and recovery steps',
    )
    .option('--state-dir <dir>', 'the supervisor’s state directory (default $BULWARK_DATA_DIR/supervisor)')
    .option('--lines <n>', 'log lines shown per crash', '10')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean; lines: string }, command: Command) => {
      const stateDir = stateDirOf(command);
      let status: Record<string, unknown>;
      let live = true;
      try {
        status = (await requestSupervisor(stateDir, 'GET', '/status', 5_000)).body;
      } catch {
        live = false;
        const { readFile } = await import('node:fs/promises');
        try {
          status = JSON.parse(await readFile(path.join(stateDir, 'state.json'), 'utf8')) as Record<
            string,
            unknown
          >;
        } catch {
          throw bulwarkError('BWK_ERR_SUPERVISOR_NOT_RUNNING', { stateDir });
        }
        status['state'] = 'not running';
      }
      if (options.json === true) console.log(JSON.stringify({ live, ...status }, null, 2));
      else printStatus(status, live, Math.max(0, Number(options.lines) || 0));
    });

  supervise
    .command('reload')
    .description(
      'rolling reload: new instances must pass their probes before old ones stop; a failing one is rolled back (exit 1)',
    )
    .option('--state-dir <dir>', 'the supervisor’s state directory (default $BULWARK_DATA_DIR/supervisor)')
    .action(async (_options: unknown, command: Command) => {
      const { status, body } = await requestSupervisor(stateDirOf(command), 'POST', '/reload');
      if (status === 200) {
        console.log(`reloaded in ${String(body['durationMs'])} ms: ${String(body['detail'])}`);
        return;
      }
      const error = body['error'] as { code: string; message: string } | undefined;
      console.error(`bulwark: ${error?.code ?? 'error'}: ${error?.message ?? JSON.stringify(body)}`);
      process.exitCode = 1;
    });

  supervise
    .command('stop')
    .description('stop the running supervisor and its app gracefully')
    .option('--state-dir <dir>', 'the supervisor’s state directory (default $BULWARK_DATA_DIR/supervisor)')
    .action(async (_options: unknown, command: Command) => {
      await requestSupervisor(stateDirOf(command), 'POST', '/stop');
      console.log('stopping');
    });
}

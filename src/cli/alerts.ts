import { InvalidArgumentError, Option, type Command } from 'commander';
import pino from 'pino';
import { readAlertsFile, defaultRules } from '../alerts/config.js';
import { AlertEngine } from '../alerts/engine.js';
import { bulwarkError } from '../errors/index.js';
import { loadSettings } from '../settings/index.js';
import { createStore } from '../runtime/store.js';
import { table } from './shared.js';

/**
 * Runs `fn` with an alert engine over the configured rules and the store, without starting it
 * (a CLI must not take the evaluator's lease from the running service).
 */
async function withAlerts<T>(fn: (alerts: AlertEngine) => Promise<T>): Promise<T> {
  const settings = loadSettings();
  if (settings.alertsFile === undefined)
    throw bulwarkError('BWK_ERR_ALERTS_CONFIG', {
      summary: 'no alerting configured: set BULWARK_ALERTS_FILE to the alerting JSON file',
    });
  const config = readAlertsFile(settings.alertsFile);
  const store = await createStore({ databaseUrl: settings.databaseUrl, dataDir: settings.dataDir });
  const rules = new Map((config.defaultRules === false ? [] : defaultRules()).map((r) => [r.id, r]));
  for (const rule of config.rules ?? []) rules.set(rule.id, rule);
  const alerts = new AlertEngine({
    store,
    logger: pino({ level: 'warn' }, pino.destination(2)),
    serviceId: 'bulwark-cli',
    instanceId: 'cli',
    rules: [...rules.values()],
    receivers: config.receivers,
    read: () => Promise.resolve(undefined),
  });
  try {
    return await fn(alerts);
  } finally {
    await store.close();
  }
}

function collect(value: string, previous: string[]): string[] {
  if (!/^[^=]+=.*$/.test(value)) throw new InvalidArgumentError('must be label=value');
  return [...previous, value];
}

function duration(value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(value.trim());
  if (match === null) throw new InvalidArgumentError('must be a duration such as 90s, 30m, 2h or 1d');
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? 'ms'] ?? 1;
  return Number(match[1]) * unit;
}

/** Who runs the command, for the records. */
function actor(): string {
  return `cli:${process.env['USER'] ?? 'unknown'}`;
}

/** Defines `bulwark alerts list|outbox|silence|silences|unsilence|ack|test`. */
export function defineAlertsCommand(alerts: Command): void {
  alerts.addHelpText(
    'after',
    [
      '',
      'Examples:',
      '  bulwark alerts list',
      '  bulwark alerts outbox --state pending',
      '  bulwark alerts test ops-webhook',
    ].join('\n'),
  );

  alerts
    .command('list')
    .description('every rule with its state (inactive, pending, firing, nodata, error), as last evaluated')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const rules = await withAlerts((a) => a.rules());
      if (options.json === true) {
        console.log(JSON.stringify(rules, null, 2));
        return;
      }
      console.log(
        table([
          ['rule', 'severity', 'state', 'since', 'value', 'summary'],
          ...rules.map(({ rule, status }) => [
            rule.id,
            rule.severity,
            status.state,
            new Date(status.since).toISOString(),
            status.value === undefined ? '-' : String(Math.round(status.value * 1000) / 1000),
            rule.summary,
          ]),
        ]),
      );
    });

  alerts
    .command('outbox')
    .description('notifications, newest first, with their delivery state, attempts and last error')
    .addOption(
      new Option('--state <state>', 'only this state').choices([
        'pending',
        'sent',
        'dead',
        'silenced',
        'inhibited',
      ]),
    )
    .option('--json', 'print JSON')
    .action(
      async (options: { state?: 'pending' | 'sent' | 'dead' | 'silenced' | 'inhibited'; json?: boolean }) => {
        const entries = await withAlerts((a) =>
          a.outbox.list({ limit: 100, ...(options.state === undefined ? {} : { state: options.state }) }),
        );
        if (options.json === true) {
          console.log(JSON.stringify(entries, null, 2));
          return;
        }
        if (entries.length === 0) {
          console.log('no notifications');
          return;
        }
        console.log(
          table([
            ['key', 'receiver', 'state', 'attempts', 'created', 'last error'],
            ...entries.map((e) => [
              e.key,
              e.receiver,
              e.state,
              String(e.attempts),
              new Date(e.createdAt).toISOString(),
              (e.lastError ?? '').slice(0, 80),
            ]),
          ]),
        );
      },
    );

  alerts
    .command('silence')
    .description('silence matching alerts for a while (their notifications are not sent)')
    .requiredOption(
      '--match <label=value>',
      'a label matcher, e.g. alertname=bulwark.memory (repeatable)',
      collect,
      [],
    )
    .requiredOption('--for <duration>', 'how long: 90s, 30m, 2h, 1d', duration)
    .requiredOption('--comment <text>', 'why (shown with the silence)')
    .action(async (options: { match: string[]; for: number; comment: string }) => {
      const matchers = Object.fromEntries(
        options.match.map((m) => [m.slice(0, m.indexOf('=')), m.slice(m.indexOf('=') + 1)]),
      );
      const now = Date.now();
      const silence = await withAlerts((a) =>
        a.silences.add({
          matchers,
          startsAt: now,
          endsAt: now + options.for,
          createdBy: actor(),
          comment: options.comment,
        }),
      );
      console.log(`silence ${silence.id} until ${new Date(silence.endsAt).toISOString()}`);
    });

  alerts
    .command('silences')
    .description('silences not yet ended')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const silences = await withAlerts((a) => a.silences.list(Date.now()));
      if (options.json === true) console.log(JSON.stringify(silences, null, 2));
      else if (silences.length === 0) console.log('no silences');
      else
        console.log(
          table([
            ['id', 'matchers', 'ends', 'by', 'comment'],
            ...silences.map((s) => [
              s.id,
              Object.entries(s.matchers)
                .map(([k, v]) => `${k}=${v}`)
                .join(','),
              new Date(s.endsAt).toISOString(),
              s.createdBy,
              s.comment,
            ]),
          ]),
        );
    });

  alerts
    .command('unsilence')
    .description('end a silence now')
    .argument('<id>', 'the silence id')
    .action(async (id: string) => {
      const expired = await withAlerts((a) => a.silences.expire(id));
      console.log(expired ? `silence ${id} ended` : `no silence ${id}`);
      if (!expired) process.exitCode = 1;
    });

  alerts
    .command('ack')
    .description('acknowledge a firing alert: no repeats and no escalation until it resolves or fires again')
    .argument('<rule>', 'the rule id')
    .requiredOption('--comment <text>', 'what is being done')
    .action(async (rule: string, options: { comment: string }) => {
      const ack = await withAlerts((a) => a.ack(rule, actor(), options.comment));
      console.log(`acknowledged ${rule} (firing ${ack.transition}) as ${ack.by}`);
    });

  alerts
    .command('test')
    .description('send a test notification to one receiver now (exit 1 if it was not delivered)')
    .argument('<receiver>', 'the receiver name')
    .action(async (receiver: string) => {
      const result = await withAlerts((a) => a.test(receiver));
      if (result.delivered) console.log(`delivered a test notification to ${receiver}`);
      else {
        console.error(`bulwark: not delivered to ${receiver}: ${result.error ?? 'unknown error'}`);
        process.exitCode = 1;
      }
    });
}

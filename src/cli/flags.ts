import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { flagActor, flagOverview, requireFlag } from '../admin/flags.js';
import { bulwarkError } from '../errors/index.js';
import type { EvaluationContext, FlagValue } from '../flags/types.js';
import { table, withParts } from './shared.js';

/** The audit actor of a change made from the command line: `cli:<$USER>`, or `cli` without one. */
export function cliActor(env: NodeJS.ProcessEnv = process.env): string {
  const user = env['USER']?.trim() ?? '';
  return user === '' ? 'cli' : `cli:${user}`;
}

function intFrom(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return n;
  };
}

function percentage(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100)
    throw new InvalidArgumentError('<percentage> must be a number from 0 to 100');
  return n;
}

function json(value: string): FlagValue {
  try {
    return JSON.parse(value) as FlagValue;
  } catch (error) {
    throw new InvalidArgumentError(`not valid JSON: ${(error as Error).message}`);
  }
}

function context(value: string): EvaluationContext {
  const parsed = json(value);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new InvalidArgumentError('must be a JSON object, e.g. \'{"targetingKey":"u1"}\'');
  return parsed;
}

/** One definition from a JSON file; `BWK_ERR_CLI_USAGE` naming the file when unreadable or not JSON. */
async function readDefinition(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw bulwarkError('BWK_ERR_CLI_USAGE', { detail: `cannot read ${file}: ${(error as Error).message}` });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    // The parser's message gives the position (`... at position 12`).
    throw bulwarkError(
      'BWK_ERR_CLI_USAGE',
      { detail: `${file} is not valid JSON: ${(error as Error).message}` },
      { cause: error },
    );
  }
}

function reasonOf(detail: unknown): string {
  const reason = (detail as { reason?: unknown } | null)?.reason;
  return typeof reason === 'string' ? reason : '';
}

/**
 * Defines `bulwark flags` and its subcommands to `program`: list, get, set, kill, revive, rollout,
 * history, delete, eval over `bulwark.flags`, on the same store as the server. Errors (an unknown
 * flag, an invalid definition, a stale `--if-version`) propagate to the caller, which prints their
 * code and exits 1. The flag service audits every change, with actor `cli:<$USER>` (or `cli`).
 */
export function defineFlagsCommand(flags: Command): void {
  flags.addHelpText(
    'after',
    [
      '',
      'Examples:',
      '  bulwark flags list',
      '  bulwark flags set new-checkout.json --reason "staff preview"',
      '  bulwark flags rollout new-checkout 10 --reason "first 10 %"',
      '  bulwark flags kill bulwark.cache --reason "incident 42"',
      '  bulwark flags eval new-checkout --context \'{"targetingKey":"u1"}\'',
    ].join('\n'),
  );

  flags
    .command('list')
    .description('every flag: type, enabled, rollout, rules, stored version; then where they came from')
    .option('--json', 'print JSON ({ provenance, flags })')
    .action(async (options: { json?: boolean }) => {
      const overview = await withParts(['flags'], (bw) => flagOverview(bw.flags));
      if (options.json === true) {
        console.log(JSON.stringify(overview, null, 2));
        return;
      }
      console.log(
        table([
          ['key', 'type', 'enabled', 'rollout', 'rules', 'version'],
          ...overview.flags.map((f) => [
            f.key,
            f.type,
            f.enabled ? 'yes' : 'no',
            f.rollout === undefined ? '-' : `${f.rollout.percentage}%`,
            String(f.rules?.length ?? 0),
            String(f.version),
          ]),
        ]),
      );
      const p = overview.provenance;
      console.log(
        `\n${p.flags} flags from the ${p.source} (revision ${p.revision}, read ${new Date(p.loadedAt).toISOString()})`,
      );
    });

  flags
    .command('get')
    .description('one flag’s definition and stored version')
    .argument('<key>', 'flag key')
    .option('--json', 'print JSON ({ flag, version })')
    .action(async (key: string, options: { json?: boolean }) => {
      const result = await withParts(['flags'], async (bw) => {
        const flag = requireFlag(bw.flags, key);
        return { flag, version: await bw.flags.versionOf(key) };
      });
      if (options.json === true) {
        console.log(JSON.stringify(result, null, 2));
        return;
      }
      const { flag, version } = result;
      console.log(`${flag.key}  ${flag.type}  ${flag.enabled ? 'enabled' : 'killed'}  version ${version}`);
      console.log(JSON.stringify(flag, null, 2));
    });

  flags
    .command('set')
    .description('create or replace a flag from a JSON file holding one definition')
    .argument('<file>', 'JSON file with the definition (see docs/flags.md)')
    .option('--reason <text>', 'why, for the audit log')
    .option(
      '--if-version <n>',
      'only if the stored version is still n (0: only if absent)',
      intFrom(0, 2 ** 31),
    )
    .action(async (file: string, options: { reason?: string; ifVersion?: number }) => {
      const input = await readDefinition(file);
      const { key, version } = await withParts(['flags'], async (bw) => {
        const flag = await bw.flags.set(
          input,
          flagActor(cliActor(), options.reason),
          options.ifVersion === undefined ? {} : { ifVersion: options.ifVersion },
        );
        return { key: flag.key, version: await bw.flags.versionOf(flag.key) };
      });
      console.log(`set ${key} (version ${version})`);
    });

  for (const kill of [true, false]) {
    flags
      .command(kill ? 'kill' : 'revive')
      .description(
        kill
          ? 'kill switch: serve the off variant to everyone, on every instance'
          : 'release the kill switch',
      )
      .argument('<key>', 'flag key')
      .option('--reason <text>', 'why, for the audit log')
      .action(async (key: string, options: { reason?: string }) => {
        const who = flagActor(cliActor(), options.reason);
        const flag = await withParts(['flags'], (bw) =>
          kill ? bw.flags.kill(key, who) : bw.flags.revive(key, who),
        );
        if (kill) console.log(`killed ${key}: everyone gets "${flag.offVariant ?? flag.defaultVariant}"`);
        else console.log(`revived ${key}`);
      });
  }

  flags
    .command('rollout')
    .description('set the top-level percentage rollout (variants default to the current ones, or on/off)')
    .argument('<key>', 'flag key')
    .argument('<percentage>', 'share of targeting keys that get the variant, 0–100', percentage)
    .option('--variant <v>', 'the variant rolled out')
    .option('--otherwise <o>', 'the variant everyone else gets')
    .option('--reason <text>', 'why, for the audit log')
    .action(
      async (
        key: string,
        pct: number,
        options: { variant?: string; otherwise?: string; reason?: string },
      ) => {
        const flag = await withParts(['flags'], (bw) =>
          bw.flags.rollout(key, pct, flagActor(cliActor(), options.reason), {
            ...(options.variant === undefined ? {} : { variant: options.variant }),
            ...(options.otherwise === undefined ? {} : { otherwise: options.otherwise }),
          }),
        );
        const r = flag.rollout;
        console.log(`${key}: ${r?.percentage}% get "${r?.variant}", the others "${r?.otherwise}"`);
      },
    );

  flags
    .command('history')
    .description('the audit records of one flag, newest first')
    .argument('<key>', 'flag key')
    .option('--limit <n>', 'at most this many records (1–500)', intFrom(1, 500), 50)
    .option('--json', 'print JSON (with before/after of each change)')
    .action(async (key: string, options: { limit: number; json?: boolean }) => {
      const records = await withParts(['flags'], (bw) => bw.flags.history(key, options.limit));
      if (options.json === true) {
        console.log(JSON.stringify(records, null, 2));
        return;
      }
      if (records.length === 0) {
        console.log(`no history for ${key}`);
        return;
      }
      console.log(
        table([
          ['at', 'actor', 'action', 'reason'],
          ...records.map((r) => [new Date(r.at).toISOString(), r.actor, r.action, reasonOf(r.detail)]),
        ]),
      );
    });

  flags
    .command('delete')
    .description('delete a stored flag (evaluations then return the caller’s default)')
    .argument('<key>', 'flag key')
    .option('--reason <text>', 'why, for the audit log')
    .action(async (key: string, options: { reason?: string }) => {
      const removed = await withParts(['flags'], (bw) =>
        bw.flags.remove(key, flagActor(cliActor(), options.reason)),
      );
      if (!removed) throw bulwarkError('BWK_ERR_FLAG_NOT_FOUND', { key });
      console.log(`deleted ${key}`);
    });

  flags
    .command('eval')
    .description('evaluate a flag for a context, as an instance would (to check targeting)')
    .argument('<key>', 'flag key')
    .option('--context <json>', 'the evaluation context, a JSON object', context, {})
    .option('--default <json>', 'the value answered on an error, as JSON', json, null)
    .option('--json', 'print JSON')
    .action(
      async (key: string, options: { context: EvaluationContext; default: FlagValue; json?: boolean }) => {
        const details = await withParts(['flags'], async (bw) => {
          requireFlag(bw.flags, key);
          return bw.flags.evaluate(key, options.context, options.default);
        });
        if (options.json === true) {
          console.log(JSON.stringify(details, null, 2));
          return;
        }
        const rows = [
          ['value', JSON.stringify(details.value)],
          ['variant', details.variant ?? '-'],
          ['reason', details.reason],
        ];
        if (details.rule !== undefined) rows.push(['rule', details.rule]);
        if (details.errorCode !== undefined)
          rows.push(['error', `${details.errorCode}: ${details.errorMessage ?? ''}`.trim()]);
        console.log(table(rows));
      },
    );
}

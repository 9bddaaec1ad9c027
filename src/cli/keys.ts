import { InvalidArgumentError, type Command } from 'commander';
import { ROLES, type KeyInfo, type Role } from '../access/types.js';
import { cliActor } from './flags.js';
import { table, withParts } from './shared.js';

function role(value: string): Role {
  if (!(ROLES as readonly string[]).includes(value))
    throw new InvalidArgumentError(`must be ${ROLES.join(' or ')}`);
  return value as Role;
}

function when(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString();
}

/**
 * Defines `bulwark keys` and its subcommands to `program`: create, list, revoke, over the access part
 * on the same store as the server. A key is printed once, by `create`, and never stored (only its
 * SHA-256 digest); `list` shows names, roles and times, never a key or digest. Errors (a taken name,
 * an unknown one) propagate to the caller, which prints their code and exits 1. Audited with actor
 * `cli:<$USER>` (or `cli`).
 */
export function defineKeysCommand(keys: Command): void {
  keys.addHelpText(
    'after',
    [
      '',
      'Keys open the admin API (Authorization: Bearer <key>) and the console (/admin/login).',
      'A viewer may only read; an operator may also change things. BULWARK_ADMIN_KEY stays a',
      'bootstrap operator key beside them.',
      '',
      'Examples:',
      '  bulwark keys create --name ada --role operator',
      '  bulwark keys create --name grafana --role viewer --json',
      '  bulwark keys list',
      '  bulwark keys revoke grafana',
    ].join('\n'),
  );

  keys
    .command('create')
    .description('store a new admin key and print it: it is shown this once, only its digest is kept')
    .requiredOption('--name <name>', "1 to 64 of a-z, 0-9, '.', '_', '-' (the audit log shows key:<name>)")
    .requiredOption('--role <role>', `${ROLES.join(' or ')}`, role)
    .option('--json', 'print JSON ({ name, role, createdAt, lastUsedAt, revokedAt, key })')
    .action(async (options: { name: string; role: Role; json?: boolean }) => {
      const { key, info } = await withParts(['access'], ({ access }) =>
        access.createKey(options.name, options.role, cliActor()),
      );
      // The note on stderr, the key alone on stdout: `KEY=$(bulwark keys create ...)` keeps just the key.
      console.error(`Created ${info.role} key "${info.name}". It is not shown again: store it now.`);
      console.log(options.json === true ? JSON.stringify({ ...info, key }, null, 2) : key);
    });

  keys
    .command('list')
    .description('every key: name, role, created, last used (to the minute), revoked; never a key')
    .option('--json', 'print JSON ([{ name, role, createdAt, lastUsedAt, revokedAt }], times in ms)')
    .action(async (options: { json?: boolean }) => {
      const list: KeyInfo[] = await withParts(['access'], ({ access }) => access.listKeys());
      if (options.json === true) {
        console.log(JSON.stringify(list, null, 2));
        return;
      }
      if (list.length === 0) {
        console.log('no keys stored (create one: bulwark keys create --name <name> --role operator)');
        return;
      }
      console.log(
        table([
          ['name', 'role', 'created', 'last used', 'revoked'],
          ...list.map((k) => [k.name, k.role, when(k.createdAt), when(k.lastUsedAt), when(k.revokedAt)]),
        ]),
      );
    });

  keys
    .command('revoke')
    .description('revoke a key at once: it opens nothing any more and its console sessions end')
    .argument('<name>', 'the key’s name (bulwark keys list)')
    .action(async (name: string) => {
      const { sessionsEnded } = await withParts(['access'], ({ access }) =>
        access.revokeKey(name, cliActor()),
      );
      console.log(`revoked ${name} (${sessionsEnded} session${sessionsEnded === 1 ? '' : 's'} ended)`);
    });
}

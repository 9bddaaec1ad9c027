import type { Command } from 'commander';
import { loadSettings, redactSettings, settingFields } from '../settings/index.js';
import { table } from './shared.js';

/** Defines `bulwark settings`: validates the environment and prints the settings (secrets masked). */
export function defineSettingsCommand(command: Command): void {
  command
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
}

/** A setting's value as `bulwark settings` prints it: lists comma-separated, unset as `(unset)`. */
function shownSetting(value: unknown): string {
  if (value === undefined) return '(unset)';
  if (Array.isArray(value)) return value.join(', ');
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

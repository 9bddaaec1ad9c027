import type { AlertsConfig } from '../alerts/config.js';
import type { AlertRule } from '../alerts/rules.js';
import { loadSettings } from '../settings/index.js';
import type { BulwarkOptions } from './create.js';

/**
 * `options` with an application's own alert rules added to the alerting the operator configured:
 * the `alerts` option, else the `BULWARK_ALERTS_FILE` file (read and validated here, as
 * `createBulwark()` would). Receivers, routes and every other field are kept; a configured rule with
 * the same id replaces the app's (the operator's word wins), and `"defaultRules": false` still only
 * turns off Bulwark's own. With nothing configured the rules run with no receivers: they are
 * evaluated and shown (the console's Alerts page) and notify nobody, and Bulwark's default rules run
 * with them. Resolves the new options (the given ones are not changed). Rejects with
 * `BWK_ERR_ALERTS_CONFIG` naming the file when it cannot be read or is invalid, and with
 * `BWK_ERR_SETTINGS_INVALID` for an invalid setting, before anything opens.
 */
export async function withAlertRules<O extends BulwarkOptions>(
  options: O,
  rules: readonly AlertRule[],
): Promise<O> {
  let configured: AlertsConfig | undefined = options.alerts;
  if (configured === undefined) {
    const file = loadSettings(options, options.env ?? process.env).alertsFile;
    // Loaded only when there is a file: the validation pulls in every notifier's checks.
    if (file !== undefined) configured = (await import('../alerts/config.js')).readAlertsFile(file);
  }
  const alerts: AlertsConfig =
    configured === undefined
      ? { receivers: [], rules: [...rules] }
      : { ...configured, rules: [...rules, ...(configured.rules ?? [])] };
  return { ...options, alerts };
}

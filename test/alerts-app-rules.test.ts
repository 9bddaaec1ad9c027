// An app's own alert rules added to whatever the operator configured (`withAlertRules`): with
// nothing configured they still evaluate (no receivers); with the `alerts` option or the
// BULWARK_ALERTS_FILE file, the operator's receivers, routes and rules are kept, and an operator's
// rule with the same id replaces the app's.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AlertsConfig } from '../src/alerts/config.js';
import type { AlertRule } from '../src/alerts/rules.js';
import { isBulwarkError } from '../src/errors/index.js';
import { withAlertRules } from '../src/index.js';
import { createBulwark, type Bulwark, type BulwarkOptions } from '../src/runtime/create.js';
import { LogCapture } from './helpers/app.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

const APP_RULE: AlertRule = {
  id: 'app.backlog',
  kind: 'threshold',
  series: 'app.backlog',
  fireAbove: 10,
  severity: 'warning',
  summary: 'Backlog above 10',
};

const RECEIVER = { name: 'ops', type: 'webhook', url: 'http://127.0.0.1:9/hook' } as const;

async function start(options: BulwarkOptions): Promise<Bulwark> {
  const bulwark = await createBulwark({
    store: { sqliteFile: ':memory:' },
    logDestination: new LogCapture(),
    defaultMetrics: false,
    ...options,
  });
  closers.push(() => bulwark.close());
  return bulwark;
}

const ids = (bulwark: Bulwark) => bulwark.alerts?.configuredRules.map((r) => r.id) ?? [];

describe('withAlertRules', () => {
  it('with nothing configured the rules evaluate with no receivers, beside Bulwark’s defaults', async () => {
    const given: BulwarkOptions = { env: {} };
    const options = await withAlertRules(given, [APP_RULE]);
    expect(given).toEqual({ env: {} });
    expect(options.alerts).toEqual({ receivers: [], rules: [APP_RULE] });
    const bulwark = await start(options);
    expect(ids(bulwark)).toEqual(expect.arrayContaining(['app.backlog', 'bulwark.error-ratio']));
    expect(bulwark.alerts?.receivers).toEqual([]);
    let backlog = 12;
    bulwark.metrics.history?.register('app.backlog', () => backlog);
    await bulwark.metrics.history?.sampleNow();
    await bulwark.alerts?.evaluateOnce();
    const state = async () =>
      (await bulwark.alerts?.rules())?.find((r) => r.rule.id === 'app.backlog')?.status.state;
    expect(await state()).toBe('firing');
    await bulwark.alerts?.sendOnce();
    expect(await bulwark.store.db.selectFrom('bulwark_alert_outbox').selectAll().execute()).toEqual([]);
    backlog = 2;
    await bulwark.metrics.history?.sampleNow();
    await bulwark.alerts?.evaluateOnce();
    expect(await state()).toBe('inactive');
  });

  it('keeps the receivers and rules of the alerts option; an operator’s rule of the same id wins', async () => {
    const configured: AlertsConfig = {
      defaultRules: false,
      receivers: [RECEIVER],
      routes: { 'app.backlog': ['ops'] },
      rules: [
        { ...APP_RULE, fireAbove: 100, summary: 'Backlog above 100 (ours)' },
        { ...APP_RULE, id: 'ops.own', series: 'app.other' },
      ],
    };
    const options = await withAlertRules({ env: {}, alerts: configured }, [
      APP_RULE,
      { ...APP_RULE, id: 'app.second' },
    ]);
    const bulwark = await start(options);
    expect(bulwark.alerts?.receivers).toEqual([{ name: 'ops', type: 'webhook' }]);
    expect(ids(bulwark).sort()).toEqual(['app.backlog', 'app.second', 'ops.own']);
    expect(bulwark.alerts?.configuredRules.find((r) => r.id === 'app.backlog')?.fireAbove).toBe(100);
    expect(options.alerts?.routes).toEqual({ 'app.backlog': ['ops'] });
  });

  it('adds to the BULWARK_ALERTS_FILE file, and names the file when it is invalid', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bulwark-app-rules-'));
    closers.push(async () => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'alerts.json');
    writeFileSync(file, JSON.stringify({ receivers: [RECEIVER], rules: [{ ...APP_RULE, id: 'ops.own' }] }));
    const options = await withAlertRules({ env: { BULWARK_ALERTS_FILE: file } }, [APP_RULE]);
    const bulwark = await start(options);
    expect(bulwark.alerts?.receivers).toEqual([{ name: 'ops', type: 'webhook' }]);
    expect(ids(bulwark)).toEqual(expect.arrayContaining(['app.backlog', 'ops.own', 'bulwark.memory']));

    writeFileSync(file, JSON.stringify({ receivers: [{ name: 'ops', type: 'webhook' }] }));
    const error: unknown = await withAlertRules({ env: { BULWARK_ALERTS_FILE: file } }, [APP_RULE]).catch(
      (e: unknown) => e,
    );
    expect(isBulwarkError(error, 'BWK_ERR_ALERTS_CONFIG')).toBe(true);
    expect((error as Error).message).toContain(file);
  });
});

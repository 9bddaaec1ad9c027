import path from 'node:path';
import type { TObject } from 'typebox';
import type { Part } from '../parts/index.js';
import type { ConfigManager } from './manager.js';
import type { ConfigManagerOptions } from './types.js';

/** The service's own configuration: its schema, file (default `<BULWARK_DATA_DIR>/config.json`) and watching. */
export type ConfigPartOptions<S extends TObject> = Omit<ConfigManagerOptions<S>, 'file' | 'logger'> & {
  file?: string;
  watch?: boolean;
};

/**
 * The service's config manager (undefined without options): started (a broken file falls back to
 * the last good revision, and `/health` says so), watched for edits (`watch`, default true), and
 * reported by the `config:revision` check.
 */
export function configPart<S extends TObject>(
  options: ConfigPartOptions<S> | undefined,
): Part<'config', ConfigManager<S> | undefined> {
  return {
    name: 'config',
    needs: [],
    checks: ['config:revision'],
    async start(_needs, { settings, logger, health }) {
      if (options === undefined) return undefined;
      const { ConfigManager } = await import('./manager.js');
      const { file, watch, ...rest } = options;
      const config = new ConfigManager<S>({
        ...rest,
        file: file ?? path.join(settings.dataDir, 'config.json'),
        logger,
      });
      const started = await config.start();
      let problem: string | undefined = started.error?.message;
      config.onInvalid((error) => (problem = error.message));
      config.onChange(() => (problem = undefined));
      if (watch !== false) config.watch();
      health.register({
        name: 'config:revision',
        componentType: 'component',
        critical: false,
        readiness: true,
        intervalMs: 5000,
        check: () =>
          problem === undefined
            ? { status: 'pass', observedValue: config.revision }
            : {
                status: 'warn',
                observedValue: config.revision,
                output: `running the last good revision: ${problem}`,
              },
      });
      return config;
    },
    close: (config) => config?.close(),
  };
}

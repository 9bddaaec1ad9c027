import pino from 'pino';
import { createLogger } from '../logging/index.js';
import { ControlServers } from './control.js';
import type { SuperviseOptions } from './options.js';
import { Supervisor } from './supervisor.js';

/**
 * Runs a supervisor until SIGTERM/SIGINT (graceful stop of every app's processes, then exit 0) or
 * until every app exited with a "do not restart" code (exit with that code). SIGHUP reloads.
 * The supervisor's own log lines go to stderr; the app's output is copied to stdout/stderr.
 * Resolves with the exit code.
 */
export async function runSupervisor(
  options: SuperviseOptions,
  level: 'info' | 'debug' = 'info',
): Promise<number> {
  const logger = createLogger({
    level,
    destination: pino.destination({ dest: 2, sync: true }),
    base: { name: 'bulwark-supervise' },
  });
  const supervisor = new Supervisor(options, { logger });
  const control = new ControlServers();
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));
  let stopping = false;
  const stop = (code: number, why: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ why }, 'supervisor stopping: stopping the app');
    void supervisor
      .stop()
      .then(() => control.close())
      .then(() => resolveDone(code));
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.error({ signal }, 'second signal while stopping: killing the app now');
      process.exit(1);
    }
    stop(0, signal);
  };
  const onHup = () => {
    supervisor.reload().catch((error: unknown) => logger.warn({ err: error }, 'reload refused'));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onHup);
  try {
    await control.start(supervisor, () => stop(0, 'stop command'));
    supervisor.onAllStopped((code) => stop(code, `the app exited with ${code}`));
    logger.info(
      {
        mode: options.instances === undefined ? 'direct' : 'cluster',
        instances: options.instances ?? 1,
        port: options.port,
        stateDir: options.stateDir,
        metricsPort: control.metricsPort,
      },
      `supervising: ${options.command.join(' ')}`,
    );
    await supervisor.start();
    logger.info({ port: supervisor.port, state: supervisor.state }, 'supervisor started');
    return await done;
  } catch (error) {
    await supervisor.stop();
    await control.close();
    throw error;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('SIGHUP', onHup);
  }
}

import { InvalidArgumentError, Option, type Command } from 'commander';
import { JOB_STATES, queueOverview, setQueuePaused } from '../admin/queues.js';
import type { JobState } from '../queue/index.js';
import type { Store } from '../store/types.js';
import { table, withParts } from './shared.js';

/** Appends an audit record of a change made from the command line (actor `cli`). */
async function audit(
  bulwark: { store: Store },
  action: string,
  queue: string,
  detail: unknown,
): Promise<void> {
  await bulwark.store.audit.append({ actor: 'cli', action, target: `queue:${queue}`, detail });
}

function limit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw new InvalidArgumentError('must be an integer from 1 to 1000');
  return n;
}

function oneLine(text: string | null, max = 60): string {
  if (text === null) return '';
  const line = text.split('\n')[0] ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * Defines `bulwark queues` and its subcommands to `program`: list, jobs, redrive, promote, remove,
 * pause, resume over `bulwark.queues`. Errors (a bad queue name, a missing job) propagate to the
 * caller, which prints their code and exits 1. Changes are written to the audit log (actor `cli`).
 */
export function defineQueuesCommand(queues: Command): void {
  queues.addHelpText(
    'after',
    [
      '',
      'Examples:',
      '  bulwark queues list',
      '  bulwark queues jobs email --state dead',
      '  bulwark queues redrive email',
      '  bulwark queues pause email --reason "provider outage"',
    ].join('\n'),
  );

  queues
    .command('list')
    .description('every queue with its paused flag and per-state counts')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const overview = await withParts(['queues'], async (bw) => queueOverview(bw.queues));
      if (options.json === true) {
        console.log(JSON.stringify(overview, null, 2));
        return;
      }
      if (overview.length === 0) {
        console.log('no queues');
        return;
      }
      console.log(
        table([
          ['queue', 'paused', ...JOB_STATES],
          ...overview.map((q) => [
            q.queue,
            q.paused ? 'yes' : 'no',
            ...JOB_STATES.map((state) => String(q.counts[state])),
          ]),
        ]),
      );
    });

  queues
    .command('jobs')
    .description('jobs of a queue in one state, oldest first')
    .argument('<queue>', 'queue name')
    .addOption(new Option('--state <state>', 'job state').choices(JOB_STATES).makeOptionMandatory())
    .option('--limit <n>', 'at most this many jobs (1–1000)', limit, 100)
    .option('--json', 'print JSON (with each job’s data)')
    .action(async (queue: string, options: { state: JobState; limit: number; json?: boolean }) => {
      const jobs = await withParts(['queues'], (bw) => bw.queues.list(queue, options.state, options.limit));
      if (options.json === true) {
        console.log(JSON.stringify(jobs, null, 2));
        return;
      }
      if (jobs.length === 0) {
        console.log(`no ${options.state} jobs in ${queue}`);
        return;
      }
      console.log(
        table([
          ['id', 'attempts', 'priority', 'created', 'run at', 'last error'],
          ...jobs.map((job) => [
            job.id,
            `${job.attempts}/${job.maxAttempts}`,
            String(job.priority),
            new Date(job.createdAt).toISOString(),
            new Date(job.runAt).toISOString(),
            oneLine(job.lastError),
          ]),
        ]),
      );
    });

  queues
    .command('redrive')
    .description('run dead jobs again with fresh attempts (all of them, or the ids given)')
    .argument('<queue>', 'queue name')
    .argument('[ids...]', 'ids of dead jobs (default: every dead job of the queue)')
    .action(async (queue: string, ids: string[]) => {
      const wanted = ids.length === 0 ? undefined : ids;
      const redriven = await withParts(['queues'], async (bw) => {
        const done = await bw.queues.redrive(queue, wanted);
        await audit(bw, 'queue.redrive', queue, { ids: wanted ?? null, redriven: done });
        return done;
      });
      console.log(`redriven ${redriven.length} dead job(s) of ${queue}`);
      for (const id of redriven) console.log(`  ${id}`);
      const missed = (wanted ?? []).filter((id) => !redriven.includes(id));
      if (missed.length > 0) console.error(`not redriven (no dead job with that id): ${missed.join(', ')}`);
    });

  queues
    .command('promote')
    .description('make a delayed or retrying job due now')
    .argument('<queue>', 'queue name')
    .argument('<id>', 'job id')
    .action(async (queue: string, id: string) => {
      await withParts(['queues'], async (bw) => {
        await bw.queues.promote(queue, id);
        await audit(bw, 'queue.promote', queue, { id });
      });
      console.log(`promoted ${queue}/${id}: due now`);
    });

  queues
    .command('remove')
    .description('delete a job that is not running')
    .argument('<queue>', 'queue name')
    .argument('<id>', 'job id')
    .action(async (queue: string, id: string) => {
      await withParts(['queues'], async (bw) => {
        await bw.queues.remove(queue, id);
        await audit(bw, 'queue.remove', queue, { id });
      });
      console.log(`removed ${queue}/${id}`);
    });

  for (const paused of [true, false]) {
    queues
      .command(paused ? 'pause' : 'resume')
      .description(
        paused
          ? 'stop every instance from starting jobs of the queue (running jobs finish)'
          : 'let the instances start jobs of the queue again',
      )
      .argument('<queue>', 'queue name')
      .option('--reason <text>', 'why, for the audit log')
      .action(async (queue: string, options: { reason?: string }) => {
        const { before } = await withParts(['queues'], async (bw) =>
          setQueuePaused(bw, queue, paused, {
            actor: 'cli',
            reason: options.reason,
            before: (await bw.queues.pausedQueues()).has(queue),
          }),
        );
        if (before === paused) console.log(`${queue} was ${paused ? 'already' : 'not'} paused`);
        else console.log(`${paused ? 'paused' : 'resumed'} ${queue}`);
      });
  }
}

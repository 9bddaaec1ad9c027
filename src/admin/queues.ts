import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { bulwarkError } from '../errors/index.js';
import type { DurationStats, JobQueue, JobState, QueueCounts } from '../queue/index.js';
import { TIMINGS_WINDOW_MS } from '../queue/timings.js';
import type { Bulwark } from '../runtime/create.js';
import { adminActor } from './actor.js';

/** The states a job is reported in, in the order operators read them. */
export const JOB_STATES = [
  'waiting',
  'delayed',
  'retrying',
  'active',
  'dead',
] as const satisfies readonly JobState[];

/** One queue as the admin API and `bulwark queues list` show it. */
export interface QueueOverview {
  queue: string;
  paused: boolean;
  counts: QueueCounts;
}

/**
 * Every queue `counts()` knows (it has jobs, or a worker in this process), plus paused queues with
 * no jobs, sorted by name; paused as recorded in the store now.
 */
export async function queueOverview(queues: JobQueue): Promise<QueueOverview[]> {
  const paused = await queues.pausedQueues();
  const counts = new Map(await queues.counts());
  for (const queue of paused) if (!counts.has(queue)) counts.set(queue, emptyCounts());
  return [...counts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([queue, c]) => ({ queue, paused: paused.has(queue), counts: c }));
}

/** One queue as the console's queue list shows it: {@link QueueOverview} and how it keeps up. */
export interface QueueRow extends QueueOverview {
  /** How long its oldest waiting job has waited since it fell due (ms); null with none waiting. */
  oldestWaitingMs: number | null;
  /** Recent wait and run times of this instance's workers (ms). */
  wait: DurationStats;
  run: DurationStats;
}

/** A page of the queue list. */
export interface QueueList {
  queues: QueueRow[];
  /** The last queue name of this page, to pass as `after`; null on the last page. */
  next: string | null;
  /** How far back `wait` and `run` look (ms). */
  windowMs: number;
}

/**
 * A page of {@link queueOverview} (queues named after `after`, at most `limit`), each with its
 * oldest waiting job's age at `now` and this instance's recent wait and run times: one counts query
 * and one oldest-waiting query for every queue, whatever the page.
 */
export async function queueList(
  queues: JobQueue,
  opts: { limit: number; after?: string | undefined },
  now = Date.now(),
): Promise<QueueList> {
  const [overview, oldest] = await Promise.all([queueOverview(queues), queues.oldestWaiting()]);
  const { after, limit } = opts;
  const start = after === undefined ? 0 : overview.findIndex((q) => q.queue > after);
  const page = start === -1 ? [] : overview.slice(start, start + limit);
  return {
    queues: page.map((q) => keepingUp(queues, q, oldest.get(q.queue), now)),
    next: start !== -1 && start + limit < overview.length ? (page.at(-1)?.queue ?? null) : null,
    windowMs: TIMINGS_WINDOW_MS,
  };
}

/** One queue as {@link queueList} shows it, whether it has jobs or not. `BWK_ERR_QUEUE_OPTIONS` for a bad name. */
export async function queueRow(queues: JobQueue, queue: string, now = Date.now()): Promise<QueueRow> {
  const [oldest, counts, paused] = await Promise.all([
    queues.oldestWaiting(queue),
    queues.counts(queue),
    queues.pausedQueues(),
  ]);
  const overview = { queue, paused: paused.has(queue), counts: counts.get(queue) ?? emptyCounts() };
  return keepingUp(queues, overview, oldest.get(queue), now);
}

/** `overview` with its oldest waiting job's age (due at `due`) at `now` and its recent timings. */
function keepingUp(
  queues: JobQueue,
  overview: QueueOverview,
  due: number | undefined,
  now: number,
): QueueRow {
  const { wait, run } = queues.timings(overview.queue);
  return { ...overview, oldestWaitingMs: due === undefined ? null : Math.max(0, now - due), wait, run };
}

function emptyCounts(): QueueCounts {
  return { waiting: 0, delayed: 0, retrying: 0, active: 0, dead: 0 };
}

/**
 * Pauses or resumes `queue` and appends an audit record (`queue.pause` / `queue.resume`, target
 * `queue:<name>`, detail `{ before, after, reason }`). `before` is `audit.before` when given, else the
 * state recorded in the store. Queue errors (`BWK_ERR_QUEUE_OPTIONS` for a bad name) are
 * thrown before anything changes.
 */
export async function setQueuePaused(
  bulwark: Pick<Bulwark, 'queues' | 'store'>,
  queue: string,
  paused: boolean,
  audit: { actor: string; reason?: string | undefined; before?: boolean },
): Promise<{ before: boolean; after: boolean }> {
  const before = audit.before ?? (await bulwark.queues.pausedQueues()).has(queue);
  if (paused) await bulwark.queues.pause(queue);
  else await bulwark.queues.resume(queue);
  await bulwark.store.audit.append({
    actor: audit.actor,
    action: paused ? 'queue.pause' : 'queue.resume',
    target: `queue:${queue}`,
    detail: { before, after: paused, reason: audit.reason ?? null },
  });
  return { before, after: paused };
}

const security = [{ adminKey: [] }];
const State = Type.Enum([...JOB_STATES]);
const Counts = Type.Object({
  waiting: Type.Integer(),
  delayed: Type.Integer(),
  retrying: Type.Integer(),
  active: Type.Integer(),
  dead: Type.Integer(),
});
const Durations = Type.Object({
  count: Type.Integer({ description: 'durations recorded in the window' }),
  p50: Type.Union([Type.Number(), Type.Null()], { description: 'ms; null when none was recorded' }),
  p95: Type.Union([Type.Number(), Type.Null()], { description: 'ms; null when none was recorded' }),
});
const Queue = Type.Object({
  queue: Type.String(),
  paused: Type.Boolean(),
  counts: Counts,
  oldestWaitingMs: Type.Union([Type.Integer(), Type.Null()], {
    description: 'how long the oldest waiting job has waited since it fell due',
  }),
  wait: Durations,
  run: Durations,
});
const JobFields = {
  queue: Type.String(),
  id: Type.String(),
  state: State,
  attempts: Type.Integer(),
  maxAttempts: Type.Integer(),
  priority: Type.Integer(),
  createdAt: Type.Integer({ description: 'ms since the epoch' }),
  runAt: Type.Integer({ description: 'ms since the epoch: when it is, or was, due' }),
};
const Preview = Type.Object({
  text: Type.String({ description: 'the start, at most `preview` bytes of UTF-8' }),
  bytes: Type.Integer({ description: 'size of the whole in bytes' }),
  truncated: Type.Boolean(),
});
const JobPreview = Type.Object({
  ...JobFields,
  data: Preview,
  lastError: Type.Union([Preview, Type.Null()]),
});
const JobDetail = Type.Object({
  ...JobFields,
  lastError: Type.Union([Type.String(), Type.Null()]),
  data: Type.Unknown(),
  startedAt: Type.Union([Type.Integer(), Type.Null()], { description: 'its latest attempt' }),
  finishedAt: Type.Union([Type.Integer(), Type.Null()], { description: 'when it died' }),
  options: Type.Object({ backoff: Type.Optional(Type.Unknown()), timeout: Type.Optional(Type.Integer()) }),
});
// The queue's own check answers a bad name with BWK_ERR_QUEUE_OPTIONS, so the schema only bounds it.
const QueueParams = Type.Object({ queue: Type.String({ maxLength: 500 }) });
const JobParams = Type.Object({
  queue: Type.String({ maxLength: 500 }),
  id: Type.String({ maxLength: 500 }),
});

/**
 * The queue routes of the admin API (`/queues...`), over `bulwark.queues`. Register them inside the
 * authenticated, audited admin scope: they check no key themselves. Each change also appends a
 * record of what it did to the queue (`queue.pause`, `queue.resume`, `queue.redrive`,
 * `queue.promote`, `queue.remove`; target `queue:<name>`) with the request's actor. Queue errors
 * reach the error handler and answer with their catalogue status (400 `BWK_ERR_QUEUE_OPTIONS`, 404
 * `BWK_ERR_QUEUE_JOB_NOT_FOUND`).
 */
export function registerQueueRoutes(admin: FastifyInstance, bulwark: Bulwark): void {
  const typed = admin.withTypeProvider<TypeBoxTypeProvider>();
  // What was done to a queue, beside the admin scope's record of the request itself.
  const audit = (request: FastifyRequest, queue: string, action: string, detail: Record<string, unknown>) =>
    bulwark.store.audit.append({
      actor: adminActor(request),
      action: `queue.${action}`,
      target: `queue:${queue}`,
      detail,
    });

  typed.get(
    '/queues',
    {
      schema: {
        tags: ['admin'],
        summary: 'Job queues: per-state counts, paused, oldest waiting age, wait and run p50/p95',
        description:
          'Sorted by name, one page at a time (`next`: the `after` of the next page). `wait` (due to started) and `run` (started to finished) are the answering instance’s own workers’ attempts over the last `windowMs` (at most the last 1 000 of each).',
        security,
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 200 })),
          after: Type.Optional(Type.String({ maxLength: 500 })),
        }),
        response: {
          200: Type.Object({
            queues: Type.Array(Queue),
            next: Type.Union([Type.String(), Type.Null()]),
            windowMs: Type.Integer(),
          }),
        },
      },
    },
    async (request) =>
      queueList(bulwark.queues, { limit: request.query.limit ?? 200, after: request.query.after }),
  );

  typed.get(
    '/queues/:queue',
    {
      schema: {
        tags: ['admin'],
        summary: 'One job queue as the list shows it (zero counts for a queue without jobs)',
        security,
        params: QueueParams,
        response: { 200: Queue },
      },
    },
    async (request) => queueRow(bulwark.queues, request.params.queue),
  );

  typed.get(
    '/queues/:queue/jobs',
    {
      schema: {
        tags: ['admin'],
        summary: 'Jobs of a queue in one state, oldest first, a page at a time, data and error cut short',
        description:
          'Each job’s data (as JSON text) and last error are previews of at most `preview` bytes with the size of the whole; `GET /queues/{queue}/jobs/{id}` has all of it. `next`: the `after` of the next page (opaque).',
        security,
        params: QueueParams,
        querystring: Type.Object({
          state: State,
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
          after: Type.Optional(Type.String({ maxLength: 100 })),
          preview: Type.Optional(Type.Integer({ minimum: 16, maximum: 1024, default: 1024 })),
        }),
        response: {
          200: Type.Object({ jobs: Type.Array(JobPreview), next: Type.Union([Type.String(), Type.Null()]) }),
        },
      },
    },
    async (request) => {
      const { state, limit = 50, after, preview = 1024 } = request.query;
      return bulwark.queues.page(request.params.queue, state, {
        limit,
        previewBytes: preview,
        ...(after === undefined ? {} : { after }),
      });
    },
  );

  typed.get(
    '/queues/:queue/jobs/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'One job with all of its data and its last error',
        security,
        params: JobParams,
        response: { 200: JobDetail },
      },
    },
    async (request) => {
      const { queue, id } = request.params;
      const job = await bulwark.queues.job(queue, id);
      if (job === undefined)
        throw bulwarkError('BWK_ERR_QUEUE_JOB_NOT_FOUND', {
          queue,
          id,
          state: 'waiting, delayed, retrying, active or dead',
        });
      return job;
    },
  );

  typed.post(
    '/queues/:queue/redrive',
    {
      schema: {
        tags: ['admin'],
        summary: 'Run dead jobs again with fresh attempts (all of them, or `ids`)',
        security,
        params: QueueParams,
        body: Type.Object(
          { ids: Type.Optional(Type.Array(Type.String({ maxLength: 500 }), { maxItems: 1000 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ redriven: Type.Array(Type.String()) }) },
      },
      // A POST without a body (`curl -X POST`) redrives every dead job.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) => {
      const { queue } = request.params;
      const { ids } = request.body;
      const redriven = await bulwark.queues.redrive(queue, ids);
      await audit(request, queue, 'redrive', {
        requested: ids ?? 'all',
        count: redriven.length,
        redriven: redriven.slice(0, 100),
      });
      return { redriven };
    },
  );

  typed.post(
    '/queues/:queue/jobs/:id/promote',
    {
      schema: {
        tags: ['admin'],
        summary: 'Make a delayed or retrying job due now',
        security,
        params: JobParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const { queue, id } = request.params;
      await bulwark.queues.promote(queue, id);
      await audit(request, queue, 'promote', { id });
      return reply.code(204).send(null);
    },
  );

  typed.delete(
    '/queues/:queue/jobs/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'Delete a job that is not running',
        security,
        params: JobParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const { queue, id } = request.params;
      await bulwark.queues.remove(queue, id);
      await audit(request, queue, 'remove', { id });
      return reply.code(204).send(null);
    },
  );

  typed.put(
    '/queues/:queue/paused',
    {
      schema: {
        tags: ['admin'],
        summary: 'Pause a queue on every instance (running jobs finish), or resume it',
        security,
        params: QueueParams,
        body: Type.Object(
          { paused: Type.Boolean(), reason: Type.Optional(Type.String({ maxLength: 500 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ queue: Type.String(), paused: Type.Boolean() }) },
      },
    },
    async (request) => {
      const { queue } = request.params;
      const { paused, reason } = request.body;
      await setQueuePaused(bulwark, queue, paused, { actor: adminActor(request), reason });
      bulwark.logger.warn(
        { queue, paused, reason },
        paused ? 'queue paused by an admin' : 'queue resumed by an admin',
      );
      return { queue, paused: bulwark.queues.paused.has(queue) };
    },
  );
}

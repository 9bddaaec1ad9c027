import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { JobQueue, JobState, QueueCounts } from '../queue/index.js';
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
  for (const queue of paused)
    if (!counts.has(queue)) counts.set(queue, { waiting: 0, delayed: 0, retrying: 0, active: 0, dead: 0 });
  return [...counts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([queue, c]) => ({ queue, paused: paused.has(queue), counts: c }));
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
const JobSummary = Type.Object({
  queue: Type.String(),
  id: Type.String(),
  state: State,
  attempts: Type.Integer(),
  maxAttempts: Type.Integer(),
  priority: Type.Integer(),
  createdAt: Type.Integer({ description: 'ms since the epoch' }),
  runAt: Type.Integer({ description: 'ms since the epoch: when it is, or was, due' }),
  lastError: Type.Union([Type.String(), Type.Null()]),
  data: Type.Unknown(),
});
// The queue's own check answers a bad name with BWK_ERR_QUEUE_OPTIONS, so the schema only bounds it.
const QueueParams = Type.Object({ queue: Type.String({ maxLength: 500 }) });
const JobParams = Type.Object({
  queue: Type.String({ maxLength: 500 }),
  id: Type.String({ maxLength: 500 }),
});

/**
 * The queue routes of the admin API (`/queues...`), over `bulwark.queues`. Register them inside the
 * authenticated, audited admin scope: they check no key themselves. Queue errors reach the error
 * handler and answer with their catalogue status (400 `BWK_ERR_QUEUE_OPTIONS`, 404
 * `BWK_ERR_QUEUE_JOB_NOT_FOUND`).
 */
export function registerQueueRoutes(admin: FastifyInstance, bulwark: Bulwark): void {
  const typed = admin.withTypeProvider<TypeBoxTypeProvider>();

  typed.get(
    '/queues',
    {
      schema: {
        tags: ['admin'],
        summary: 'Job queues with their per-state counts and whether they are paused',
        security,
        response: {
          200: Type.Array(Type.Object({ queue: Type.String(), paused: Type.Boolean(), counts: Counts })),
        },
      },
    },
    async () => queueOverview(bulwark.queues),
  );

  typed.get(
    '/queues/:queue/jobs',
    {
      schema: {
        tags: ['admin'],
        summary: 'Jobs of a queue in one state, oldest first',
        security,
        params: QueueParams,
        querystring: Type.Object({
          state: State,
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        }),
        response: { 200: Type.Array(JobSummary) },
      },
    },
    async (request) =>
      bulwark.queues.list(request.params.queue, request.query.state, request.query.limit ?? 100),
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
    async (request) => ({ redriven: await bulwark.queues.redrive(request.params.queue, request.body.ids) }),
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
      await bulwark.queues.promote(request.params.queue, request.params.id);
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
      await bulwark.queues.remove(request.params.queue, request.params.id);
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

// Spin's queue statistics over HTTP, and its series in the metrics history: `GET /api/queue-status`
// and `/api/queue-status/trends` for everyone (anonymised, cached, rate limited per IP) and
// `GET /api/admin/queue-stats` (also `/admin/api/spin/queue-stats`) behind Bulwark's admin access (a
// key, or the console's session). Register once per app:
// `app.register(spinStats, { bulwark, spin })`.
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type, { type TSchema } from 'typebox';
import type { Bulwark, RateLimitPolicy } from 'bulwark';
import { bulwarkAdminRoutes, lazySchemas } from 'bulwark/fastify';
import { GENDERS, type Gender } from './domain/types.js';
import type { SpinService } from './service.js';
import { RecentActivity, spinSeries } from './stats-activity.js';
import { PUBLIC_ROUNDING, QueueStats } from './stats.js';
import { scheduleSpinReports } from './reports.js';

export { spinAlertRules } from './stats-activity.js';

/** The public status's rate limit per IP (add it to the app's policies). */
export const QUEUE_STATUS_POLICY: RateLimitPolicy = {
  name: 'spin-queue-status',
  limit: 60,
  windowMs: 60_000,
};

/** How far back the recent activity is rebuilt from the feed at start (its window). */
const WARM_MS = 3_600_000;

const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const perGender = <T extends TSchema>(schema: T) =>
  Type.Object(Object.fromEntries(GENDERS.map((g) => [g, schema])) as Record<Gender, T>);
const Summary = Type.Object({
  matched: Type.Integer({ description: 'members matched (each match counts once per side)' }),
  avgWaitMs: nullable(Type.Integer()),
  p90WaitMs: nullable(Type.Integer({ description: 'from log buckets: within 13% (+0.13 s)' })),
  settled: Type.Integer(),
  success: Type.Integer(),
  successRate: nullable(Type.Number()),
});
const Window = Type.Object({
  fromMs: Type.Integer(),
  matches: Type.Number(),
  sampleEvery: Type.Integer({
    description:
      '1: every match read; k: about 1 in k matcher rounds of the window (summaries of that sample)',
  }),
  sampled: Type.Number({ description: 'matches read' }),
  byGender: perGender(Summary),
  byGroup: Type.Record(Type.String(), Summary),
});
const RangeQuery = Type.Object(
  {
    range: Type.Optional(Type.Enum(['1h', '24h', '7d'], { description: "the trends' range (default 24h)" })),
  },
  { additionalProperties: false },
);
const TrendsBody = Type.Object({
  range: Type.Enum(['1h', '24h', '7d']),
  fromMs: Type.Integer(),
  series: Type.Record(
    Type.String(),
    Type.Array(Type.Object({ at: Type.Integer(), avg: Type.Number(), max: Type.Number() })),
  ),
});
/** The series everyone may see, each with the step its values are rounded to. */
const PUBLIC_TRENDS: Record<string, number> = {
  ...Object.fromEntries(GENDERS.map((g) => [`app.spin.waiting{gender="${g}"}`, PUBLIC_ROUNDING])),
  ...Object.fromEntries(GENDERS.map((g) => [`app.spin.wait_p90_ms{gender="${g}"}`, 1000])),
  'app.spin.matches_per_min': 0.1,
  'app.spin.match_success_ratio': 0.01,
};
const AdminStats = Type.Object({
  at: Type.Integer(),
  waiting: Type.Object({
    total: Type.Integer(),
    byGender: perGender(Type.Integer()),
    byGroup: Type.Record(Type.String(), Type.Integer()),
  }),
  windows: Type.Object({ '1h': Window, '24h': Window, '7d': Window }),
  estimates: Type.Array(
    Type.Object({
      group: Type.String(),
      waiting: Type.Integer(),
      estimate: Type.Object(
        { estimateKnown: Type.Boolean(), reason: Type.String(), sentence: Type.String() },
        { additionalProperties: true, description: 'as GET /api/queue/status shows it' },
      ),
    }),
  ),
  matchRate: Type.Object({ recent: Type.Number(), baseline: Type.Number(), ratio: nullable(Type.Number()) }),
  trends: nullable(TrendsBody),
  recommendations: Type.Array(Type.Object({ code: Type.String(), text: Type.String() })),
});
const PublicStatus = Type.Object({
  at: Type.Integer(),
  waiting: Type.Object({ total: Type.Integer(), byGender: perGender(Type.Integer()) }),
  last24h: Type.Object({
    matches: Type.Integer(),
    successRate: nullable(Type.Number()),
    waits: perGender(nullable(Type.Object({ avgMs: Type.Integer(), p90Ms: Type.Integer() }))),
  }),
  health: Type.Object({ status: Type.Enum(['pass', 'warn', 'fail']), summary: Type.String() }),
});

/** The queue statistics' routes and series (see the module comment). */
export async function spinStats(
  app: FastifyInstance,
  { bulwark, spin }: { bulwark: Bulwark; spin: SpinService },
): Promise<void> {
  const { activity, stop } = await recentActivity(bulwark, spin);
  app.addHook('onClose', async () => stop());
  const series = spinSeries(activity, () => waitingByGender(spin));
  for (const [name, read] of Object.entries(series)) bulwark.metrics.history?.register(name, read);
  const stats = new QueueStats({ bulwark, spin, activity, series: Object.keys(series) });
  await scheduleSpinReports(bulwark, stats);

  lazySchemas(app);
  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/api/queue-status',
    {
      schema: {
        tags: ['spin'],
        summary: `The queue now, for everyone: who waits (rounded to ${PUBLIC_ROUNDING}), waits and success over 24 h, health`,
        response: { 200: PublicStatus },
      },
      config: { rateLimit: { by: 'ip', policy: QUEUE_STATUS_POLICY.name }, priority: 'sheddable' },
    },
    async () => stats.public(),
  );
  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/api/queue-status/trends',
    {
      schema: {
        tags: ['spin'],
        summary: `The public trends over 1 h / 24 h / 7 d: who waited by gender (rounded to ${PUBLIC_ROUNDING}), matches a minute, success, p90 waits by gender`,
        querystring: RangeQuery,
        response: { 200: nullable(TrendsBody) },
      },
      config: { rateLimit: { by: 'ip', policy: QUEUE_STATUS_POLICY.name }, priority: 'sheddable' },
    },
    async (request) => stats.trends(request.query.range ?? '24h', PUBLIC_TRENDS),
  );
  // The dashboard's data, at two addresses: under /api/admin for API clients with a key, and under
  // /admin/api/spin, where the admin console's session cookie (Path=/admin) reaches it from Spin's
  // dashboard page.
  for (const prefix of ['/api/admin', '/admin/api/spin'])
    await app.register(bulwarkAdminRoutes, {
      prefix,
      routes: (admin) => {
        admin.withTypeProvider<TypeBoxTypeProvider>().get(
          '/queue-stats',
          {
            schema: {
              tags: ['spin'],
              summary:
                'The queue dashboard: who waits, waits and success by gender and group over 1 h / 24 h / 7 d, estimates, trends over `range`, recommendations',
              querystring: RangeQuery,
              response: { 200: AdminStats },
            },
          },
          async (request) => stats.admin(request.query.range),
        );
      },
    });
}

/**
 * The last hour's activity, rebuilt from the feed's stored events and then kept from the live feed:
 * subscribed first, so that what the stored read returns up to the feed's position now and what the
 * feed hands over after it make every event counted once.
 */
async function recentActivity(
  bulwark: Bulwark,
  spin: SpinService,
): Promise<{ activity: RecentActivity; stop: () => void }> {
  const from = Date.now() - WARM_MS;
  const activity = new RecentActivity(Date.now, from);
  const position = spin.feed.position;
  const stop = spin.feed.subscribe((events) => activity.apply(events));
  try {
    const stored = await spin.store.recent(['joined', 'matched'], from);
    activity.apply(stored.filter((event) => event.id <= position));
  } catch (error) {
    bulwark.logger.warn({ err: error }, 'spin: the queue statistics start without the last hour');
  }
  return { activity, stop: () => void stop() };
}

/** How many wait now by gender, from the service's copy of the queue (no query: sampled every 10 s). */
function waitingByGender(spin: SpinService): Record<Gender, number> {
  const counts = Object.fromEntries(GENDERS.map((g) => [g, 0])) as Record<Gender, number>;
  spin.waitingCounts.forEach((n, index) => {
    const gender = GENDERS[index >> 3];
    if (gender !== undefined) counts[gender] += n;
  });
  return counts;
}

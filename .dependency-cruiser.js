// Import rules of src/, checked by `npm run lint` (dependency-cruiser). Three layers:
// - foundation: what every capability stands on (errors, logging, settings, health, metrics, the store,
//   the part contract, failover, the Redis connection, the package version);
// - capabilities: one folder each (cache, rate limit, queues, flags, config, error tracker, alerts, the
//   app's side of the supervisor, the supervisor process);
// - edges: what assembles capabilities and faces the user (the runtime, the Fastify plugins, the admin
//   API, the CLI, the demo app, the package's entry points).
// An import goes down or sideways, never up; and no two modules import each other, even for types
// only (a type circle is still a tangle: neither side can be understood, moved or loaded alone).
import path from 'node:path';

const FOUNDATION =
  '^src/((errors|logging|settings|health|metrics|store|parts|failover|redis)/|version\\.ts$)';
const CAPABILITY =
  '^src/(cache|ratelimit|queue|flags|config|tracker|alerts|supervised|supervisor|instances|access|protection|degradation|outbound|leaks)/';
const EDGE = '^src/((runtime|http|admin|cli|app)/|(index|fastify|code-cache)\\.ts$)';

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Modules that import each other, directly or through others (type-only imports count).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'foundation-not-to-capability',
      comment: 'A foundation module imports only foundation modules: every capability may use it.',
      severity: 'error',
      from: { path: FOUNDATION },
      to: { path: [CAPABILITY, EDGE] },
    },
    {
      name: 'capability-not-to-edge',
      comment:
        'A capability does not import the runtime, the Fastify plugins, the admin API, the CLI or the ' +
        'demo app: they assemble capabilities, so the import would run in a circle or load them all.',
      severity: 'error',
      from: { path: CAPABILITY },
      to: { path: EDGE },
    },
    {
      name: 'supervised-not-to-supervisor',
      comment:
        "The app's side of the supervisor (src/supervised/) runs in every app: it must not load the " +
        'supervisor process (the supervisor imports the protocol and the control client from it).',
      severity: 'error',
      from: { path: '^src/supervised/' },
      to: { path: '^src/supervisor/' },
    },
    {
      name: 'not-in-a-layer',
      comment:
        'Every folder of src/ is in a layer (FOUNDATION, CAPABILITY or EDGE in .dependency-cruiser.js), ' +
        'so a new folder cannot dodge the rules above.',
      severity: 'error',
      from: { path: '^src/', pathNot: [FOUNDATION, CAPABILITY, EDGE] },
      to: {},
    },
    {
      name: 'to-module-not-in-a-layer',
      comment: 'See not-in-a-layer: an import of a module in a folder that is in no layer.',
      severity: 'error',
      from: {},
      to: { path: '^src/', pathNot: [FOUNDATION, CAPABILITY, EDGE] },
    },
    {
      name: 'no-orphans',
      comment: 'A module nothing imports and that imports nothing is dead code, or a forgotten entry.',
      severity: 'error',
      from: { orphan: true, pathNot: '\\.d\\.ts$' },
      to: {},
    },
    {
      name: 'not-to-dev-dep',
      comment: 'src/ is the published package: a devDependency is missing where it is installed.',
      severity: 'error',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    // Type-only imports are dependencies too (see no-circular).
    tsPreCompilationDeps: true,
    // Absolute, so the rules also run from another directory (test/imports.test.ts runs them on a
    // fixture).
    tsConfig: { fileName: path.join(import.meta.dirname, 'tsconfig.json') },
    doNotFollow: { path: 'node_modules' },
  },
};

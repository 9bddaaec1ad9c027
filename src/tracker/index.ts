export { culpritOf, fingerprintOf, messageTemplate, parseStack, type StackFrame } from './fingerprint.js';
export { installProcessErrorHandlers, type ProcessErrorOptions } from './process.js';
export { SentryForwarder, type SentryOptions } from './sentry.js';
export { DEFAULT_ERROR_LIMITS, type ErrorLimits } from './limits.js';
export { ErrorStore } from './store.js';
export { ErrorTracker, type ErrorTrackerOptions, type TrackerFlags } from './tracker.js';
export type * from './types.js';

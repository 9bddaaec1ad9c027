// Spin's own error codes (Bulwark's are in its catalogue, docs/errors.md). Each is answered as
// Bulwark's are: `{ error: { code, message, requestId } }` with the status below.
import { appError, type AppError } from 'bulwark';

export const SpinErrors = {
  /** No `Authorization: Bearer <token>`, or a token no user has. */
  SPIN_UNAUTHORIZED: 401,
  /** The match does not exist or is not the caller's. */
  SPIN_MATCH_NOT_FOUND: 404,
  /** The caller already voted on this match: a vote is final. */
  SPIN_ALREADY_VOTED: 409,
  /** An `Idempotency-Key` already used for a different request. */
  SPIN_IDEMPOTENCY_KEY_REUSED: 422,
  /** Test endpoints: no test key, or one that is not configured (also: none configured, outside production). */
  SPIN_TEST_UNAUTHORIZED: 401,
  /** Test endpoints: turned off (flag `spin.test-endpoints`), or no key configured in production. */
  SPIN_TEST_DISABLED: 403,
  /** Test endpoints: the client's address is not on `SPIN_TEST_ALLOW_IPS`. */
  SPIN_TEST_ADDRESS_FORBIDDEN: 403,
  /** Test endpoints: a simulation already runs on this instance (one at a time). */
  SPIN_TEST_SIMULATION_RUNNING: 409,
} as const;

export type SpinErrorCode = keyof typeof SpinErrors;

export function spinError(code: SpinErrorCode, message: string): AppError {
  return appError(code, SpinErrors[code], message);
}

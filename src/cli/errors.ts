import { CaptureError } from '../capture/record.js';
import { BaselineError } from '../core/baseline.js';
import { ExpectError } from '../core/expect.js';
import { FilterError } from '../core/filter.js';
import { PolicyError } from '../detect/policy.js';

/** A mistake in how connscope was called: reported in one line, exit code 2. */
export class UsageError extends Error {}

const USER_ERRORS = [UsageError, CaptureError, PolicyError, FilterError, BaselineError, ExpectError];

/** Errors that are the user's input, not connscope's bug: one line, never a stack trace. */
export function isUserError(error: unknown): error is Error {
  return USER_ERRORS.some((kind) => error instanceof kind);
}

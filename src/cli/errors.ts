import { CaptureError } from '../capture/record.js';
import { FilterError } from '../core/filter.js';
import { PolicyError } from '../detect/policy.js';

/** A mistake in how connscope was called: reported in one line, exit code 2. */
export class UsageError extends Error {}

/** Errors that are the user's input, not connscope's bug: one line, never a stack trace. */
export function isUserError(error: unknown): error is Error {
  return error instanceof UsageError || error instanceof CaptureError || error instanceof PolicyError || error instanceof FilterError;
}

// Typed errors with stable codes (house style, after fastify FST_ERR_* and viem BaseError).
// Thrown only for operational failures (bad config, IO); invalid *data* is a Result instead.
import { ERROR_CODES, type ErrorCode } from './error-codes.ts';

export class PulseError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'PulseError';
    this.code = code;
  }
}

export function isPulseError(e: unknown, code?: ErrorCode): e is PulseError {
  return e instanceof PulseError && (code === undefined || e.code === code);
}

export function describeCode(code: ErrorCode): string {
  return ERROR_CODES[code].summary;
}

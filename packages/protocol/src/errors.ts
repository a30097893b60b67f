import { ERRORS, type ErrorCode } from './codes.js';

/** The body of every error Tether sends, over HTTP or a socket. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  timestamp: number;
  /** Present when the server suggests a delay before retrying (rate limits, shutdown). */
  retryAfterMs?: number;
}

/**
 * The one error class. Throw it with a registry code; the message defaults to the registry's.
 *
 * @example
 *   throw new TetherError('AUTH_EXPIRED');
 *   throw new TetherError('AUTH_INVALID', AUTH_MESSAGES.malformed);
 */
export class TetherError extends Error {
  readonly code: ErrorCode;
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(message ?? ERRORS[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TetherError';
    this.code = code;
    this.retryAfterMs = options?.retryAfterMs;
  }

  get httpStatus(): number {
    return ERRORS[this.code].httpStatus;
  }

  get closeCode(): number {
    return ERRORS[this.code].closeCode;
  }

  get retryable(): boolean {
    return ERRORS[this.code].retryable;
  }

  toBody(now: number = Date.now()): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message, timestamp: now };
    if (this.retryAfterMs !== undefined) body.retryAfterMs = this.retryAfterMs;
    return body;
  }
}

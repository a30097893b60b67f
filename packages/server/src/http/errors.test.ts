import { TetherError } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { toTetherError } from './errors.js';

const fastifyError = (code: string, statusCode: number): Error =>
  Object.assign(new Error('fastify says'), { code, statusCode });

describe('toTetherError', () => {
  it('keeps a TetherError as it is', () => {
    const err = new TetherError('RATE_LIMITED', undefined, { retryAfterMs: 1000 });
    expect(toTetherError(err)).toBe(err);
  });

  it("maps fastify's client errors to registry codes", () => {
    expect(toTetherError(fastifyError('FST_ERR_BAD_URL', 400)).code).toBe('VALIDATION_FAILED');
    expect(toTetherError(fastifyError('FST_ERR_MAX_PARAM_LENGTH', 414)).code).toBe('VALIDATION_FAILED');
    expect(toTetherError(fastifyError('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415)).code).toBe('VALIDATION_FAILED');
    expect(toTetherError(fastifyError('FST_ERR_CTP_BODY_TOO_LARGE', 413)).code).toBe('FRAME_TOO_LARGE');
    expect(toTetherError(fastifyError('FST_ERR_NOT_FOUND', 404)).code).toBe('NOT_FOUND');
    expect(toTetherError(fastifyError('FST_ERR_SOMETHING_NEW', 400)).code).toBe('VALIDATION_FAILED');
    expect(toTetherError(new Error('boom')).code).toBe('INTERNAL');
  });

  it('turns a server failure caused by a RangeError into a non-retryable VALIDATION_FAILED', () => {
    const overflow = new RangeError('Maximum call stack size exceeded');
    const wrapped = new TetherError('PUBLISH_FAILED', 'The event log could not be written', { cause: overflow });
    for (const err of [overflow, wrapped, new Error('outer', { cause: wrapped })]) {
      const mapped = toTetherError(err);
      expect(mapped.code).toBe('VALIDATION_FAILED');
      expect(mapped.retryable).toBe(false);
    }
  });

  it('leaves a client error caused by a RangeError as it is', () => {
    const err = new TetherError('FORBIDDEN', undefined, { cause: new RangeError('x') });
    expect(toTetherError(err)).toBe(err);
  });
});

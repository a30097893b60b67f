import { TetherError, isErrorCode, type ErrorCode } from '@tether/protocol';
import type { Platform } from './platform.js';

/** An HTTP answer with an error status, carrying the contract code from the body. */
export class ApiError extends TetherError {
  readonly status: number;
  readonly body: unknown;

  constructor(code: ErrorCode, message: string | undefined, status: number, body: unknown) {
    super(code, message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

/**
 * The request never got an answer (offline, DNS, connection refused). Code `INTERNAL` (retryable);
 * tell it apart from a server-side failure with `instanceof NetworkError`.
 */
export class NetworkError extends TetherError {
  constructor(cause: unknown) {
    super('INTERNAL', 'Network request failed', { cause });
    this.name = 'NetworkError';
  }
}

/** Whether a failure may go away by itself (network, 5xx, 429), as opposed to a refusal. */
export function isTransient(error: unknown): boolean {
  if (error instanceof NetworkError) return true;
  if (error instanceof ApiError) return error.status >= 500 || error.status === 429 || error.status === 408;
  return false;
}

function codeForStatus(status: number): ErrorCode {
  if (status === 400) return 'VALIDATION_FAILED';
  if (status === 401) return 'AUTH_INVALID';
  if (status === 403) return 'FORBIDDEN';
  if (status === 404) return 'NOT_FOUND';
  if (status === 409) return 'CONFLICT';
  if (status === 429) return 'RATE_LIMITED';
  return 'INTERNAL';
}

/** Builds the typed error for a non-2xx answer: the body's `code` when it is a known one. */
export function errorFromResponse(status: number, body: unknown): ApiError {
  const record = body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const code = isErrorCode(record['code']) ? record['code'] : codeForStatus(status);
  const message = typeof record['message'] === 'string' ? record['message'] : undefined;
  return new ApiError(code, message, status, body);
}

export interface JsonResponse {
  status: number;
  body: unknown;
}

/** `fetch` with a JSON body both ways. Throws NetworkError when no answer came. */
export async function fetchJson(platform: Platform, url: string, init: RequestInit): Promise<JsonResponse> {
  let response: Response;
  try {
    response = await platform.fetch(url, init);
  } catch (error) {
    throw new NetworkError(error);
  }
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw new NetworkError(error);
  }
  let body: unknown = undefined;
  if (text.length > 0) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return { status: response.status, body };
}

/** Joins a base URL and a path without doubling or losing the slash. */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + '/' + path.replace(/^\/+/, '');
}

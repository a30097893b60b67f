import { TetherError } from '@tether/protocol';
import { errorFromResponse, fetchJson, joinUrl } from './http.js';
import type { TokenManager } from './token-manager.js';

export interface ApiClientOptions {
  /** Base URL of the API the token authorizes (often the gateway itself, or the app's backend). */
  baseUrl: string;
  tokens: TokenManager;
}

export interface ApiRequest {
  method?: string;
  /** Sent as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Passed to fetch (cookie-mode browsers: `include`). */
  credentials?: RequestCredentials;
}

/**
 * `fetch` with the access token injected. A 401 refreshes once (shared with every other request
 * that got a 401 for the same token) and retries once; anything else non-2xx throws an `ApiError`
 * carrying the contract code (`FORBIDDEN`, `RATE_LIMITED`, …); no answer at all throws `NetworkError`.
 *
 * @example
 *   const api = new ApiClient({ baseUrl: 'https://app.example.com/api', tokens });
 *   const tickets = await api.request<Ticket[]>('/tickets');
 */
export class ApiClient {
  constructor(private readonly options: ApiClientOptions) {}

  /** Sends the request and resolves with the parsed JSON body (undefined for an empty one). */
  async request<T = unknown>(path: string, request: ApiRequest = {}): Promise<T> {
    const { tokens } = this.options;
    const token = await tokens.getAccessToken();
    if (token === null) throw new TetherError('AUTH_REQUIRED');
    let res = await this.send(path, request, token);
    if (res.status === 401) {
      // The token may have been revoked or expired in flight: one refresh, one retry, never more.
      let fresh: string;
      try {
        fresh = await tokens.refreshIfCurrent(token);
      } catch (error) {
        if (error instanceof TetherError) throw error;
        throw new TetherError('AUTH_REQUIRED', undefined, { cause: error });
      }
      res = await this.send(path, request, fresh);
    }
    if (res.status < 200 || res.status >= 300) throw errorFromResponse(res.status, res.body);
    return res.body as T;
  }

  get<T = unknown>(path: string): Promise<T> {
    return this.request<T>(path);
  }

  post<T = unknown>(path: string, body?: unknown): Promise<T> {
    return this.request<T>(path, { method: 'POST', body });
  }

  patch<T = unknown>(path: string, body?: unknown): Promise<T> {
    return this.request<T>(path, { method: 'PATCH', body });
  }

  delete<T = unknown>(path: string): Promise<T> {
    return this.request<T>(path, { method: 'DELETE' });
  }

  private send(path: string, request: ApiRequest, token: string) {
    const headers: Record<string, string> = { ...request.headers, authorization: `Bearer ${token}` };
    if (request.body !== undefined) headers['content-type'] = 'application/json';
    const init: RequestInit = {
      method: request.method ?? 'GET',
      headers,
      body: request.body === undefined ? undefined : JSON.stringify(request.body),
    };
    if (request.credentials) init.credentials = request.credentials;
    return fetchJson(this.options.tokens.platform, joinUrl(this.options.baseUrl, path), init);
  }
}

import { ApiError, errorFromResponse, fetchJson, joinUrl, type JsonResponse } from './http.js';
import { decodeJwtPayload } from './jwt.js';
import type { Platform } from './platform.js';
import type { TokenAnswer } from './token-slot.js';
import type { LoginUser } from './token-types.js';

/** The gateway's `/auth/*` endpoints (docs/PROTOCOL.md "HTTP"), typed. Errors: ApiError, NetworkError. */
export class AuthEndpoints {
  constructor(
    private readonly baseUrl: string,
    private readonly platform: Platform,
    private readonly mode: 'body' | 'cookie',
    private readonly refreshPath = '/auth/refresh',
  ) {}

  async login(email: string, password: string): Promise<TokenAnswer & { user: LoginUser }> {
    return (await this.tokenPost('/auth/login', { email, password })) as TokenAnswer & { user: LoginUser };
  }

  /** Cookie mode sends an empty body: the httpOnly cookie carries the refresh token. */
  refresh(refreshToken: string | null): Promise<TokenAnswer> {
    return this.tokenPost(this.refreshPath, this.mode === 'cookie' ? {} : { refresh_token: refreshToken });
  }

  /** Cookie mode asks for the refresh cookie; body mode must not get it (it could replace another session's). */
  guest(): Promise<TokenAnswer> {
    return this.tokenPost('/auth/guest', this.mode === 'cookie' ? { cookie: true } : undefined);
  }

  async logout(accessToken: string, refreshToken: string | null): Promise<void> {
    const body = refreshToken !== null ? { refresh_token: refreshToken } : {};
    await this.post('/auth/logout', body, { authorization: `Bearer ${accessToken}` });
  }

  /** POSTs and checks the answer carries a decodable access token. */
  private async tokenPost(path: string, body: unknown): Promise<TokenAnswer> {
    const res = await this.post(path, body);
    const answer = res.body as Partial<TokenAnswer> | undefined;
    if (typeof answer?.access_token !== 'string' || decodeJwtPayload(answer.access_token) === undefined) {
      throw new ApiError('INTERNAL', 'Malformed token answer', res.status, res.body);
    }
    return answer as TokenAnswer;
  }

  private async post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<JsonResponse> {
    const init: RequestInit = {
      method: 'POST',
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    };
    if (this.mode === 'cookie') init.credentials = 'include';
    const res = await fetchJson(this.platform, joinUrl(this.baseUrl, path), init);
    if (res.status < 200 || res.status >= 300) throw errorFromResponse(res.status, res.body);
    return res;
  }
}

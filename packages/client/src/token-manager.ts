import { TetherError, type ErrorCode } from '@tether/protocol';
import { AuthEndpoints } from './auth-endpoints.js';
import { DEFAULT_BACKOFF, backoffDelay, type BackoffOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import { isTransient } from './http.js';
import { createPlatform, sleep, type Platform, type TimerHandle } from './platform.js';
import { memoryStorage, type TokenStorage } from './storage.js';
import { TokenSlot } from './token-slot.js';
import type { LoginUser, TokenEvents, TokenManagerOptions } from './token-types.js';

export type { LoginUser, SignedOut, TokenChange, TokenEvents, TokenManagerOptions } from './token-types.js';
/**
 * Holds the access and refresh tokens, persists them, and keeps the access token fresh.
 *
 * - One refresh in flight at a time, shared by every caller; an answer to a refresh that was
 *   superseded (logout, new login) meanwhile is dropped.
 * - A rotated refresh token is stored before the new access token is announced, so a crash in
 *   between never leaves the app holding a refresh token the server already rotated away.
 * - A `REFRESH_*` refusal signs out (terminal). A network error is retried with backoff, woken
 *   early by connectivity coming back; after `maxRefreshAttempts` the error goes to the caller.
 *
 * @example
 *   const tokens = new TokenManager({ baseUrl: 'https://rt.example.com', storage: webStorage(localStorage) });
 *   await tokens.login('ada@example.com', 'secret');
 *   const token = await tokens.getAccessToken();
 */
export class TokenManager {
  readonly platform: Platform;
  /** Where tokens are kept; the realtime client keeps its last event position here too. */
  readonly storage: TokenStorage;
  /** Prefix of every key this client writes to `storage`. */
  readonly storageKey: string;
  private readonly emitter = new Emitter<TokenEvents>();
  private readonly slot: TokenSlot;
  private readonly loaded: Promise<void>;
  private readonly retry: BackoffOptions;
  private readonly endpoints: AuthEndpoints;
  private inflight: Promise<string> | null = null;
  /** Bumped whenever the session is replaced or cleared: refreshes started before are superseded. */
  private epoch = 0;
  private timer: TimerHandle | undefined;
  private readonly unhook: () => void;

  constructor(private readonly options: TokenManagerOptions) {
    this.platform = options.platform ?? createPlatform();
    this.retry = { ...DEFAULT_BACKOFF, ...options.retry };
    this.endpoints = new AuthEndpoints(options.baseUrl, this.platform, this.mode, options.refreshPath);
    this.storage = options.storage ?? memoryStorage();
    this.storageKey = options.storageKey ?? 'tether';
    this.slot = new TokenSlot(this.storage, this.storageKey, this.platform);
    this.loaded = this.slot.load().then(() => this.schedule());
    // Timers are throttled in background tabs and frozen in suspended apps: check on return.
    this.unhook = this.platform.hooks.onForeground(() => this.checkNow());
  }

  get mode(): 'body' | 'cookie' {
    return this.options.mode ?? 'body';
  }

  /** The current access token, possibly expired. Use getAccessToken() to get a usable one. */
  get accessToken(): string | null {
    return this.slot.access;
  }

  /** `exp` of the current access token, in ms. */
  get expiresAt(): number | undefined {
    return this.slot.expiresAt;
  }

  /**
   * Whether a guest's tokens are held. A guest session (the gateway's guest refresh token) is renewed
   * in place like a user's and keeps its guest id; a guest without one, or whose session ended, is
   * replaced by a new guest when its token runs out.
   */
  get isGuest(): boolean {
    return this.slot.guest;
  }

  /** Resolves once stored tokens are loaded. */
  ready(): Promise<void> {
    return this.loaded;
  }

  on<K extends keyof TokenEvents>(event: K, listener: (payload: TokenEvents[K]) => void): () => void {
    return this.emitter.on(event, listener);
  }

  /** Whether there is anything to authenticate with (a token, or a refresh path). */
  async hasSession(): Promise<boolean> {
    await this.loaded;
    return (
      this.slot.access !== null ||
      this.slot.refresh !== null ||
      (this.mode === 'cookie' && this.slot.cookieSession) ||
      this.options.getToken !== undefined
    );
  }

  /** Installs tokens obtained elsewhere (an app's own backend); supersedes any refresh in flight. */
  async setSession(tokens: { accessToken: string; refreshToken?: string | null; guest?: boolean }): Promise<void> {
    await this.loaded;
    this.supersede();
    await this.slot.replace(
      { access_token: tokens.accessToken, refresh_token: tokens.refreshToken ?? undefined },
      tokens.guest === true,
      this.mode === 'cookie',
    );
    this.announce();
  }

  /** `POST /auth/login`. Throws ApiError (`INVALID_CREDENTIALS`, `RATE_LIMITED`, …) or NetworkError. */
  async login(email: string, password: string): Promise<LoginUser> {
    const answer = await this.endpoints.login(email, password);
    await this.loaded;
    this.supersede();
    await this.slot.replace(answer, false, this.mode === 'cookie');
    this.announce();
    return answer.user;
  }

  /** `POST /auth/guest`: an anonymous session (the guest id, chosen by the gateway, is the token's `sub`). */
  async loginAsGuest(): Promise<string> {
    const answer = await this.endpoints.guest();
    await this.loaded;
    this.supersede();
    await this.slot.replace(answer, true, this.mode === 'cookie');
    this.announce();
    return answer.access_token;
  }

  /**
   * A token valid for a while yet: the current one, or a refreshed one when it is about to expire
   * (also after the app slept through its refresh timer). Null when there is no session or the
   * refresh was refused (then `signed_out` has fired). Throws NetworkError/ApiError when the
   * refresh could not reach the server.
   */
  async getAccessToken(): Promise<string | null> {
    await this.loaded;
    if (this.slot.access !== null && this.platform.now() < this.slot.usableUntil()) return this.slot.access;
    if (!(await this.hasSession())) return null;
    try {
      return await this.refresh();
    } catch (error) {
      if (error instanceof TetherError && !isTransient(error)) return null;
      throw error;
    }
  }

  /**
   * Refreshes unless `staleToken` was already replaced (another caller refreshed meanwhile), so N
   * requests answered 401 for the same token cost one refresh.
   */
  async refreshIfCurrent(staleToken: string | null): Promise<string> {
    await this.loaded;
    if (this.inflight === null && this.slot.access !== null && this.slot.access !== staleToken) return this.slot.access;
    return this.refresh();
  }

  /** Refreshes now, or joins the refresh already in flight. */
  refresh(): Promise<string> {
    if (this.inflight) return this.inflight;
    const run = this.runRefresh(this.epoch).finally(() => {
      if (this.inflight === run) this.inflight = null;
    });
    this.inflight = run;
    return run;
  }

  /** `POST /auth/logout` (best effort), then clears the tokens. Emits `signed_out` with code null. */
  async logout(): Promise<void> {
    await this.loaded;
    const access = this.slot.access;
    const refresh = this.slot.refresh;
    // A guest without a guest session has nothing on the server to end.
    if (access !== null && (!this.slot.guest || this.slot.renewable)) {
      try {
        await this.endpoints.logout(access, refresh);
      } catch {
        // Logging out locally must work offline; the server side expires on its own.
      }
    }
    await this.signOut(null, 'logged out');
  }

  /** Clears the tokens and tells the app (terminal). Used for refusals from any source. */
  async signOut(code: ErrorCode | null, message?: string): Promise<void> {
    this.supersede();
    this.cancelTimer();
    const had = this.slot.access !== null || this.slot.refresh !== null || this.slot.cookieSession;
    await this.slot.clear();
    this.emitter.emit('change', { accessToken: null, expiresAt: undefined });
    // Once per session: a refusal seen by the socket after a refused refresh is not news.
    if (had) this.emitter.emit('signed_out', { code, message: message ?? code ?? 'signed out' });
  }

  /** Stops timers and hooks (the tokens stay stored). */
  dispose(): void {
    this.cancelTimer();
    this.unhook();
    this.emitter.clear();
  }

  private async runRefresh(epoch: number): Promise<string> {
    await this.loaded;
    if (this.options.getToken) return this.runCallback(epoch, this.options.getToken);
    const guest = this.slot.guest;
    if (guest && !this.slot.renewable) return this.runGuest(epoch);
    if (this.mode === 'body' && this.slot.refresh === null) {
      await this.signOut('REFRESH_INVALID', 'no refresh token');
      throw new TetherError('REFRESH_INVALID', 'No refresh token');
    }
    const maxAttempts = this.options.maxRefreshAttempts ?? 4;
    for (let attempt = 0; ; attempt++) {
      try {
        const answer = await this.endpoints.refresh(this.slot.refresh);
        if (epoch !== this.epoch) return this.superseded();
        await this.slot.replace(answer, guest, this.mode === 'cookie');
        if (epoch !== this.epoch) return this.superseded();
        this.announce();
        return answer.access_token;
      } catch (error) {
        if (epoch !== this.epoch) return this.superseded();
        if (!isTransient(error) || !(error instanceof TetherError)) {
          const code = error instanceof TetherError ? error.code : 'REFRESH_INVALID';
          // A guest session that ended (its lifetime, or the server forgot it) is no theft: a new
          // guest replaces it, as a guest without a session is. Reuse stays terminal, as for users.
          if (guest && (code === 'REFRESH_EXPIRED' || code === 'REFRESH_INVALID')) return this.runGuest(epoch);
          await this.signOut(code, error instanceof Error ? error.message : undefined);
          throw error;
        }
        const last = attempt + 1 >= maxAttempts;
        const delay = last
          ? null
          : Math.max(error.retryAfterMs ?? 0, backoffDelay(attempt, this.retry, this.platform.random));
        this.emitter.emit('refresh_error', { error, attempt, retryInMs: delay });
        if (delay === null) throw error;
        await sleep(this.platform, delay, true);
        if (epoch !== this.epoch) return this.superseded();
      }
    }
  }

  /** Refresh through the app's own callback (tokens issued by the app's backend). */
  private async runCallback(epoch: number, getToken: () => Promise<string | null>): Promise<string> {
    const token = await getToken();
    if (epoch !== this.epoch) return this.superseded();
    if (token === null) {
      await this.signOut('AUTH_REQUIRED', 'getToken returned null');
      throw new TetherError('AUTH_REQUIRED');
    }
    await this.slot.replace({ access_token: token }, false, false);
    this.announce();
    return token;
  }

  /** A guest without a usable guest session: a new guest (a new id) replaces it. */
  private async runGuest(epoch: number): Promise<string> {
    const answer = await this.endpoints.guest();
    if (epoch !== this.epoch) return this.superseded();
    await this.slot.replace(answer, true, this.mode === 'cookie');
    this.announce();
    return answer.access_token;
  }

  /** A refresh whose session was replaced: hand callers whatever is current now. */
  private superseded(): string {
    if (this.slot.access !== null) return this.slot.access;
    throw new TetherError('AUTH_REQUIRED', 'Signed out while refreshing');
  }

  private supersede(): void {
    this.epoch++;
    this.inflight = null;
  }

  private announce(): void {
    this.emitter.emit('change', { accessToken: this.slot.access, expiresAt: this.slot.expiresAt });
    this.schedule();
  }

  private schedule(): void {
    this.cancelTimer();
    if (this.options.proactive === false || this.slot.access === null) return;
    const at = this.slot.refreshAt(this.options.refreshAheadMs ?? 60_000, this.options.refreshJitterMs ?? 10_000);
    if (at === undefined) return;
    this.timer = this.platform.setTimeout(
      () => {
        this.timer = undefined;
        this.checkNow();
      },
      Math.max(0, at - this.platform.now()),
    );
  }

  /** Refreshes when the planned moment has passed (timer fired, or app back from background). */
  private checkNow(): void {
    const at = this.slot.plannedRefreshAt;
    if (this.slot.access === null || at === undefined) return;
    if (this.platform.now() < at) {
      if (this.timer === undefined) this.schedule();
      return;
    }
    this.refresh().catch(() => {
      // Failures were reported through `refresh_error`/`signed_out`; a transient one is retried
      // by the next getAccessToken() or the realtime client's reconnect.
    });
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) this.platform.clearTimeout(this.timer);
    this.timer = undefined;
  }
}

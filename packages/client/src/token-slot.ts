import { decodeJwtPayload } from './jwt.js';
import type { Platform } from './platform.js';
import type { TokenStorage } from './storage.js';

/** What the token endpoints answer (`/auth/login`, `/auth/refresh`, `/auth/guest`). */
export interface TokenAnswer {
  access_token: string;
  refresh_token?: string | undefined;
  expires_in?: number;
}

/**
 * The tokens in memory and in storage, with the times derived from them. Kept apart from the
 * TokenManager so the refresh protocol reads without storage details in the way.
 */
export class TokenSlot {
  access: string | null = null;
  refresh: string | null = null;
  guest = false;
  /** Cookie mode: a login (or a guest session) happened, so the httpOnly cookie is presumably there. */
  cookieSession = false;
  expiresAt: number | undefined;
  private issuedAt = 0;
  /** The moment the current token should be refreshed (with its jitter drawn once). */
  plannedRefreshAt: number | undefined;

  constructor(
    private readonly storage: TokenStorage,
    private readonly prefix: string,
    private readonly platform: Platform,
  ) {}

  private key(name: string): string {
    // Secure stores accept only [A-Za-z0-9._-] in keys.
    return `${this.prefix}.${name}`;
  }

  async load(): Promise<void> {
    const [access, refresh, flags] = await Promise.all([
      this.storage.get(this.key('access_token')),
      this.storage.get(this.key('refresh_token')),
      this.storage.get(this.key('flags')),
    ]);
    this.refresh = refresh;
    this.guest = flags?.includes('guest') ?? false;
    this.cookieSession = flags?.includes('cookie') ?? false;
    this.setAccess(access);
  }

  /**
   * Stores a new pair. The refresh token is written first: if the app dies in between, the stored
   * refresh token is the live one and the next start refreshes again, instead of holding one the
   * server already rotated away (which would count as reuse and revoke the family).
   */
  async replace(answer: TokenAnswer, guest: boolean, cookieMode: boolean): Promise<void> {
    // A guest has a refresh token only when the gateway gave it a guest session; a user keeps its last one.
    const refresh = cookieMode ? null : (answer.refresh_token ?? (guest ? null : this.refresh));
    const cookieSession = cookieMode && (!guest || answer.refresh_token !== undefined);
    if (refresh !== null) await this.storage.set(this.key('refresh_token'), refresh);
    else await this.storage.remove(this.key('refresh_token'));
    const flags = [guest ? 'guest' : '', cookieSession ? 'cookie' : ''].filter(Boolean).join(',');
    await this.storage.set(this.key('flags'), flags);
    await this.storage.set(this.key('access_token'), answer.access_token);
    this.refresh = refresh;
    this.guest = guest;
    this.cookieSession = cookieSession;
    this.setAccess(answer.access_token);
  }

  /** Whether the session can be refreshed (a refresh token, or the cookie): for a guest, whether it has a guest session. */
  get renewable(): boolean {
    return this.refresh !== null || this.cookieSession;
  }

  async clear(): Promise<void> {
    this.access = null;
    this.refresh = null;
    this.guest = false;
    this.cookieSession = false;
    this.expiresAt = undefined;
    this.plannedRefreshAt = undefined;
    await Promise.all(['access_token', 'refresh_token', 'flags'].map((n) => this.storage.remove(this.key(n))));
  }

  private setAccess(token: string | null): void {
    this.access = token;
    this.plannedRefreshAt = undefined;
    const claims = token === null ? undefined : decodeJwtPayload(token);
    const exp = claims?.['exp'];
    const iat = claims?.['iat'];
    this.expiresAt = typeof exp === 'number' ? exp * 1000 : undefined;
    const now = this.platform.now();
    this.issuedAt = typeof iat === 'number' && iat * 1000 <= now ? iat * 1000 : now;
  }

  private get lifetime(): number {
    return this.expiresAt === undefined ? Infinity : Math.max(0, this.expiresAt - this.issuedAt);
  }

  /** Until when the token may be handed out: a margin before `exp` for the trip to the server. */
  usableUntil(): number {
    if (this.expiresAt === undefined) return Infinity;
    return this.expiresAt - Math.min(5_000, this.lifetime / 5);
  }

  /**
   * When to refresh proactively: `aheadMs` before `exp` and up to `jitterMs` earlier at random,
   * both capped by the lifetime so a short token is not refreshed the moment it arrives.
   */
  refreshAt(aheadMs: number, jitterMs: number): number | undefined {
    if (this.expiresAt === undefined) return undefined;
    if (this.plannedRefreshAt === undefined) {
      const ahead = Math.min(aheadMs, this.lifetime / 4);
      const jitter = this.platform.random() * Math.min(jitterMs, this.lifetime / 10);
      this.plannedRefreshAt = this.expiresAt - ahead - jitter;
    }
    return this.plannedRefreshAt;
  }
}

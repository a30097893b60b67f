import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Tether from '@tether/client';
import { launchChromium } from './helpers/chromium.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';

const ROOT = join(import.meta.dirname, '..');
const GUEST_TTL_S = 2;
const RUN_MS = 5 * GUEST_TTL_S * 1000 + 1_000;
const PAGE = `<!doctype html><meta charset="utf-8"><title>guest</title>
<script type="module">import * as tether from '/tether-client.js'; window.tether = tether;</script>`;

/** What the page keeps about its guest client. */
interface PageWindow {
  tether: typeof Tether;
  tokens: Tether.TokenManager;
  client: Tether.RealtimeClient;
  states: string[];
  sessions: string[];
  received: number[];
  signedOut: number;
}

/**
 * Guest continuity in a real browser, in cookie mode: the page (an allowed origin of the same site)
 * never sees the guest's refresh token — the httpOnly cookie carries it — and the guest stays the
 * same guest id over one connection for five guest-token lifetimes.
 */
describe('client SDK bundle in Chromium: a cookie-mode guest keeps its id', () => {
  let gw: TestGateway;
  let browser: Browser;
  let site: Server;
  let siteUrl: string;

  beforeAll(async () => {
    // Bundled in memory, so this test never rewrites the package's dist/ under other tests.
    const result = await build({
      entryPoints: [join(ROOT, 'packages/client/src/index.ts')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: ['es2022'],
      conditions: ['source'],
      write: false,
    });
    const bundle = result.outputFiles[0]!.text;
    site = createServer((req, res) => {
      if (req.url === '/tether-client.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
      else res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    gw = await startGateway({
      ALLOWED_ORIGINS: siteUrl,
      GUEST_TOKEN_TTL_SECONDS: String(GUEST_TTL_S),
      TOKEN_EXPIRY_WARNING_SECONDS: '1',
      AUTH_RATE_PER_MINUTE: '1000',
      REAUTH_RATE_PER_MINUTE: '600',
    });
    browser = await launchChromium();
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (site ? site.close(() => resolve()) : resolve()));
    await gw?.close();
  });

  it('ws: same guest id for five 2 s guest-token lifetimes, no reconnect, refresh token never in JavaScript', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(`${siteUrl}/`);
      await page.waitForFunction(() => 'tether' in window);

      const guestId = await page.evaluate(async (gatewayUrl) => {
        const w = window as unknown as PageWindow;
        const { RealtimeClient, TokenManager } = w.tether;
        w.states = [];
        w.sessions = [];
        w.received = [];
        w.signedOut = 0;
        w.tokens = new TokenManager({ baseUrl: gatewayUrl, mode: 'cookie' });
        w.tokens.on('signed_out', () => w.signedOut++);
        await w.tokens.loginAsGuest();
        w.client = new RealtimeClient({ url: gatewayUrl, tokens: w.tokens, transport: 'ws' });
        w.client.onState((change) => w.states.push(change.current));
        w.client.onSession((session) => w.sessions.push(session.userId));
        w.client.on('tick', (data) => w.received.push(Number(data['seq'])));
        const connected = new Promise<void>((resolve, reject) => {
          const deadline = setTimeout(() => reject(new Error(`not connected: ${w.states.join(' → ')}`)), 15_000);
          const off = w.client.onState((change) => {
            if (change.current !== 'connected') return;
            clearTimeout(deadline);
            off();
            resolve();
          });
        });
        w.client.connect();
        await connected;
        return w.client.session!.userId;
      }, gw.url);
      expect(guestId).toMatch(/^guest:/);

      let sent = 0;
      const started = Date.now();
      while (Date.now() - started < RUN_MS) {
        await gw.gateway.publish({ event: 'tick', data: { seq: sent }, to: { users: [guestId] } });
        sent++;
        await new Promise((r) => setTimeout(r, 250));
      }
      await page.waitForFunction((n) => (window as unknown as PageWindow).received.length >= n, sent, {
        timeout: 10_000,
      });

      const seen = await page.evaluate(() => {
        const w = window as unknown as PageWindow;
        const token = w.tokens.accessToken;
        return {
          states: w.states,
          sessions: w.sessions,
          received: w.received,
          signedOut: w.signedOut,
          isGuest: w.tokens.isGuest,
          sub: token === null ? null : w.tether.decodeJwtPayload(token)?.['sub'],
          cookie: document.cookie,
        };
      });
      expect(seen.received).toEqual(Array.from({ length: sent }, (_, i) => i));
      expect(seen.states).toEqual(['connecting', 'authenticating', 'connected']);
      expect(seen.sessions).toEqual([guestId]);
      expect(seen.sub).toBe(guestId);
      expect(seen.isGuest).toBe(true);
      expect(seen.signedOut).toBe(0);
      expect(seen.cookie).not.toContain('refresh_token');
      // Renewed by the cookie: the browser holds it, scoped to /auth.
      const cookies = await context.cookies(`${gw.url}/auth/refresh`);
      expect(cookies.find((c) => c.name === 'refresh_token')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});

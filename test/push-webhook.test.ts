import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PushWebhookBody } from '../packages/server/src/push/push-fallback.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { SioClient, waitUntil } from './helpers/realtime.js';

/** A loopback push relay: records each POST; `fail` answers the first N requests with 503. */
class Webhook {
  readonly received: PushWebhookBody[] = [];
  requests = 0;
  fail = 0;
  private readonly server: Server;
  private readonly pokes = new Set<() => void>();

  constructor() {
    this.server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        this.requests++;
        if (this.fail > 0) {
          this.fail--;
          res.writeHead(503).end();
        } else {
          this.received.push(JSON.parse(body) as PushWebhookBody);
          res.writeHead(204).end();
        }
        for (const poke of [...this.pokes]) poke();
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((done) => this.server.listen(0, '127.0.0.1', done));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/push`;
  }

  onRequest(poke: () => void): () => void {
    this.pokes.add(poke);
    return () => this.pokes.delete(poke);
  }

  next(match: (body: PushWebhookBody) => boolean): Promise<PushWebhookBody> {
    return waitUntil(
      'a push webhook call',
      () => this.received.find(match),
      (poke) => {
        this.pokes.add(poke);
        return () => this.pokes.delete(poke);
      },
    );
  }

  close(): Promise<void> {
    return new Promise((done) => this.server.close(() => done()));
  }
}

describe('push fallback for users with no live connection', () => {
  let webhook: Webhook;
  let t: TestGateway;

  beforeEach(async () => {
    webhook = new Webhook();
    t = await startGateway({ PUSH_WEBHOOK_URL: await webhook.listen(), PUSH_MAX_ATTEMPTS: '3' });
  });

  afterEach(async () => {
    await t.close();
    await webhook.close();
  });

  it('registers devices with an API key and never echoes the push token', async () => {
    const anonymous = await t.http('POST', '/v1/devices', { userId: 'u1', platform: 'ios', token: 'apns-1' });
    expect(anonymous.status).toBe(401);
    const bad = await t.api('POST', '/v1/devices', { userId: 'u1', platform: 'pager', token: 'x' });
    expect(bad.status).toBe(400);
    const created = await t.api('POST', '/v1/devices', { userId: 'u1', platform: 'ios', token: 'apns-1' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ userId: 'u1', platform: 'ios' });
    expect(created.body.token).toBeUndefined();
    const again = await t.api('POST', '/v1/devices', { userId: 'u1', platform: 'ios', token: 'apns-1' });
    expect(again.body.id).toBe(created.body.id);
    expect((await t.api('DELETE', `/v1/devices/${created.body.id as string}`)).status).toBe(204);
    expect((await t.api('DELETE', `/v1/devices/${created.body.id as string}`)).status).toBe(404);
  });

  it('the webhook receives user-addressed events for an offline user, and none for an online one', async () => {
    await t.api('POST', '/v1/devices', { userId: 'offline', platform: 'expo', token: 'ExponentPushToken[off]' });
    await t.api('POST', '/v1/devices', { userId: 'online', platform: 'android', token: 'fcm-on' });
    const client = new SioClient(t.url, { auth: { token: t.sign({ sub: 'online' }) } });
    await client.session();

    const published = await t.api('POST', '/v1/publish', {
      event: 'ticket_assigned',
      data: { ticketId: 't9' },
      to: { users: ['offline', 'online'] },
    });
    expect(published.status).toBe(202);
    const push = await webhook.next((body) => body.id === published.body.id);
    expect(push).toEqual({
      userId: 'offline',
      devices: [{ id: expect.any(String) as string, platform: 'expo', token: 'ExponentPushToken[off]' }],
      event: 'ticket_assigned',
      data: { ticketId: 't9' },
      id: published.body.id,
    });
    await client.first('ticket_assigned');
    client.close();
    // Closing waits for every push in flight: afterwards nothing more can arrive.
    await t.close();
    expect(webhook.received.filter((body) => body.userId === 'online')).toEqual([]);
  });

  it('retries a failing webhook with backoff, a bounded number of times', async () => {
    await t.api('POST', '/v1/devices', { userId: 'retry', platform: 'web', token: 'wp-1' });
    webhook.fail = 2;
    const published = await t.api('POST', '/v1/publish', { event: 'reminder', data: {}, to: { users: ['retry'] } });
    await webhook.next((body) => body.id === published.body.id);
    expect(webhook.requests).toBe(3);

    webhook.fail = 10;
    await t.api('POST', '/v1/publish', { event: 'reminder', data: {}, to: { users: ['retry'] } });
    await waitUntil(
      'three more attempts',
      () => (webhook.requests >= 6 ? true : undefined),
      (poke) => webhook.onRequest(poke),
    );
    await t.close();
    expect(t.logs()).toContain('push webhook failed');
    expect(webhook.requests).toBe(6);
    expect(t.logs()).not.toContain('wp-1');
  });
});

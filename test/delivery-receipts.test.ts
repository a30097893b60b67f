import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect as tcpConnect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeliveryReport, TimelineReport } from '../packages/server/src/index.js';
import type { PushWebhookBody } from '../packages/server/src/push/push-fallback.js';
import { loggedInClient, provisionUser, reaches, type ClientUnderTest } from './helpers/client-harness.js';
import { createDatabase, REDIS_URL } from './helpers/cluster.js';
import { startGateway, type Env, type TestGateway } from './helpers/gateway.js';
import { SioClient, WsClient, type Frame } from './helpers/realtime.js';

/** A loopback push relay recording each POST. */
class Webhook {
  readonly received: PushWebhookBody[] = [];
  private readonly server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      this.received.push(JSON.parse(body) as PushWebhookBody);
      res.writeHead(204).end();
    });
  });

  async listen(): Promise<string> {
    await new Promise<void>((done) => this.server.listen(0, '127.0.0.1', done));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/push`;
  }

  pushesOf(eventId: string): PushWebhookBody[] {
    return this.received.filter((body) => body.id === eventId);
  }

  close(): Promise<void> {
    return new Promise((done) => this.server.close(() => done()));
  }
}

/**
 * A TCP proxy that can black-hole its connections: from `blackhole()` on, nothing is forwarded either
 * way, but no connection is closed — the server still sees an open socket (a phone in a dead zone
 * behind a NAT that keeps the flow), and only its heartbeat could tell.
 */
class BlackholeProxy {
  private holed = false;
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: ReturnType<typeof createTcpServer>) {}

  static async start(targetPort: number): Promise<BlackholeProxy> {
    const server = createTcpServer();
    const proxy = new BlackholeProxy(server);
    server.on('connection', (client) => {
      const upstream = tcpConnect(targetPort, '127.0.0.1');
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        proxy.sockets.add(from);
        from.on('data', (chunk) => {
          if (!proxy.holed) to.write(chunk);
        });
        from.on('error', () => to.destroy());
        from.on('close', () => {
          proxy.sockets.delete(from);
          to.destroy();
        });
      }
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  blackhole(): void {
    this.holed = true;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((done) => this.server.close(() => done()));
  }
}

/** Resolves when `check` holds (re-checked every 50 ms); rejects after 15 s. */
async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 50));
  }
}

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function track<T extends { close(): unknown }>(thing: T): T {
  cleanups.push(() => thing.close());
  return thing;
}

async function deliveries(gw: TestGateway, id: string): Promise<DeliveryReport | undefined> {
  const res = await gw.api('GET', `/v1/events/${encodeURIComponent(id)}/deliveries`);
  if (res.status === 404) return undefined;
  expect(res.status).toBe(200);
  return res.body as DeliveryReport;
}

/** Polls the delivery record until `check` holds for it. */
async function recordUntil(
  gw: TestGateway,
  id: string,
  what: string,
  check: (report: DeliveryReport) => boolean,
): Promise<DeliveryReport> {
  let last: DeliveryReport | undefined;
  const started = Date.now();
  for (;;) {
    last = await deliveries(gw, id);
    if (last !== undefined && check(last)) return last;
    if (Date.now() - started > 15_000)
      throw new Error(`timed out waiting for ${what}; record: ${JSON.stringify(last)}`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

/** A plain `/ws` client (no SDK, no receipts) for `userId`, resuming from `position` when given. */
async function plainClient(gw: TestGateway, url: string, userId: string, position?: string): Promise<WsClient> {
  const ws = track(new WsClient(url));
  await ws.opened();
  ws.send({
    type: 'authenticate',
    token: gw.sign({ sub: userId }, 60),
    ...(position === undefined ? {} : { position }),
  });
  await ws.next((f) => f.type === 'session_created');
  return ws;
}

function eventFrame(ws: WsClient, id: string): Promise<Frame> {
  return ws.next((f) => f.type === 'event' && f.id === id);
}

/** Resolves when the SDK client's handler saw the event id. */
function seen(c: ClientUnderTest, name: string): { ids: string[] } {
  const out = { ids: [] as string[] };
  c.client.on(name, (_data, meta) => {
    if (meta.id !== undefined) out.ids.push(meta.id);
  });
  return out;
}

describe('delivery record: three devices of one user on two nodes', () => {
  it('shows two acknowledged SDK devices, one plain device unacknowledged, then a recovery path', async () => {
    const db = await createDatabase();
    cleanups.push(() => db.drop());
    const shared: Env = {
      JWT_SECRET: randomBytes(48).toString('base64url'),
      REDIS_URL,
      REDIS_PREFIX: `dr${randomBytes(5).toString('hex')}`,
      DATABASE_URL: db.url,
      PING_INTERVAL_MS: '300',
    };
    const a = track(await startGateway(shared));
    const b = track(await startGateway(shared));
    const user = await provisionUser(a);

    const phone = track(await loggedInClient('socket.io', user, { httpUrl: a.url, realtimeUrl: a.url }));
    const laptop = track(await loggedInClient('ws', user, { httpUrl: b.url, realtimeUrl: b.url }));
    const onPhone = seen(phone, 'ticket_assigned');
    const onLaptop = seen(laptop, 'ticket_assigned');
    phone.client.connect();
    laptop.client.connect();
    await reaches(phone, 'connected');
    await reaches(laptop, 'connected');
    const plain = await plainClient(a, a.url, user.id);

    const published = await b.api('POST', '/v1/publish', {
      event: 'ticket_assigned',
      data: { ticketId: 't-1' },
      to: { users: [user.id] },
    });
    expect(published.status).toBe(202);
    const id = (published.body as { id: string }).id;
    const plainFrame = await eventFrame(plain, id);
    await eventually('both SDK clients handled the event', () => onPhone.ids.includes(id) && onLaptop.ids.includes(id));

    const report = await recordUntil(
      a,
      id,
      'two receipts',
      (r) => r.users[0]!.devices.filter((d) => d.acknowledgedAt !== null).length === 2,
    );
    expect(report.event).toBe('ticket_assigned');
    expect(report.users).toHaveLength(1);
    const record = report.users[0]!;
    expect(record.userId).toBe(user.id);
    expect(record.acknowledged).toBe(true);
    expect(record.devices).toHaveLength(3);
    const byTransport = (t: string, acked: boolean) =>
      record.devices.find((d) => d.transport === t && (d.acknowledgedAt !== null) === acked);
    const sio = byTransport('socket.io', true)!;
    const ws = byTransport('ws', true)!;
    const unacked = byTransport('ws', false)!;
    expect(sio.node).toBe(a.gateway.sessions()[0]!.node);
    expect(ws.node).not.toBe(sio.node);
    for (const device of [sio, ws, unacked]) {
      expect(device.path).toBe('live');
      expect(device.deliveredAt).toBeGreaterThan(0);
    }
    expect(sio.acknowledgedAt!).toBeGreaterThanOrEqual(sio.deliveredAt);
    expect(ws.acknowledgedAt!).toBeGreaterThanOrEqual(ws.deliveredAt);
    expect(report.unacknowledged).toBe(1);
    // Either node answers for all of them (one shared store).
    expect((await deliveries(b, id))!.users[0]!.devices).toHaveLength(3);

    // The plain device goes away, an event is published meanwhile, and it comes back with its position.
    const position = String(plainFrame.position);
    plain.ws.close();
    await eventually('the plain device is gone', () => a.gateway.sessions().length === 1);
    const missed = await b.api('POST', '/v1/publish', {
      event: 'ticket_assigned',
      data: { ticketId: 't-2' },
      to: { users: [user.id] },
    });
    const missedId = (missed.body as { id: string }).id;
    const back = await plainClient(a, a.url, user.id, position);
    await eventFrame(back, missedId);
    const recovered = await recordUntil(a, missedId, 'a recovery delivery', (r) =>
      r.users[0]!.devices.some((d) => d.path === 'recovery'),
    );
    const viaRecovery = recovered.users[0]!.devices.find((d) => d.path === 'recovery')!;
    expect(viaRecovery.transport).toBe('ws');
    expect(viaRecovery.acknowledgedAt).toBeNull();

    // Heartbeat round trips and publish→receipt latency are measured.
    await eventually('a heartbeat round trip on each transport', async () => {
      const metrics = `${(await a.http('GET', '/metrics')).body as string}${(await b.http('GET', '/metrics')).body as string}`;
      return ['ws', 'socket.io'].every((t) =>
        new RegExp(`tether_heartbeat_rtt_seconds_count\\{transport="${t}"\\} [1-9]`).test(metrics),
      );
    });
    expect((await a.http('GET', '/metrics')).body).toMatch(/tether_receipt_latency_seconds_count [1-9]/);
    expect(a.gateway.sessions().find((s) => s.transport === 'socket.io')!.rttMs).toBeGreaterThan(0);
  }, 60_000);

  it('sends receipts in batches, not one frame per event, on both transports', async () => {
    const gw = track(await startGateway());
    const user = await provisionUser(gw);
    const frames: number[] = [];
    const hub = gw.internals.hub;
    const original = hub.receipt.bind(hub);
    hub.receipt = (session, ids) => {
      frames.push((ids as string[]).length);
      original(session, ids);
    };
    for (const transport of ['ws', 'socket.io'] as const) {
      frames.length = 0;
      const c = track(await loggedInClient(transport, user, { httpUrl: gw.url, realtimeUrl: gw.url }));
      const got = seen(c, 'tick');
      c.client.connect();
      await reaches(c, 'connected');
      const events = Array.from({ length: 300 }, (_, i) => ({ event: 'tick', data: { i }, to: { users: [user.id] } }));
      const res = await gw.api('POST', '/v1/publish', events);
      expect(res.status).toBe(202);
      await eventually('300 events handled', () => got.ids.length === 300);
      await eventually('every receipt arrived', () => frames.reduce((n, k) => n + k, 0) === 300);
      // 300 receipts: at most 256 per frame, and one frame per window otherwise.
      expect(frames.length).toBeLessThanOrEqual(10);
      c.close();
    }
  }, 60_000);

  it('answers a malformed receipt with a coded error and keeps the connection', async () => {
    const gw = track(await startGateway());
    const ws = track(new WsClient(gw.url));
    await ws.opened();
    ws.send({ type: 'authenticate', token: gw.sign({ sub: 'r1' }) });
    await ws.next((f) => f.type === 'session_created');
    ws.send({ type: 'receipt', ids: 'nope' });
    const error = await ws.next((f) => f.type === 'error');
    expect(error.code).toBe('VALIDATION_FAILED');
    ws.send({ type: 'receipt', ids: Array.from({ length: 257 }, (_, i) => `e${i}`) });
    await ws.next((f) => f.type === 'error' && f !== error);
    expect(ws.closeInfo).toBeUndefined();

    const sio = track(new SioClient(gw.url, { auth: { token: gw.sign({ sub: 'r2' }) } }));
    await sio.next((e) => e.event === 'session_created');
    sio.socket.emit('receipt', { ids: [42] });
    const sioError = await sio.next((e) => e.event === 'error');
    expect((sioError.args[0] as { code: string }).code).toBe('VALIDATION_FAILED');
    expect(sio.socket.connected).toBe(true);
  });
});

describe('push on a missing receipt', () => {
  it('pushes once per event for a black-holed device, and not once a device acknowledges again', async () => {
    const webhook = track(new Webhook());
    const gw = track(await startGateway({ PUSH_WEBHOOK_URL: await webhook.listen(), RECEIPT_PUSH_AFTER_MS: '800' }));
    const user = await provisionUser(gw);
    expect((await gw.api('POST', '/v1/devices', { userId: user.id, platform: 'ios', token: 'apns-1' })).status).toBe(
      201,
    );
    const proxy = track(await BlackholeProxy.start(gw.port));
    const phone = track(await loggedInClient('ws', user, { httpUrl: gw.url, realtimeUrl: proxy.url }));
    const onPhone = seen(phone, 'order_ready');
    phone.client.connect();
    await reaches(phone, 'connected');
    const publish = async (n: number) =>
      (
        (await gw.api('POST', '/v1/publish', { event: 'order_ready', data: { n }, to: { users: [user.id] } })).body as {
          id: string;
        }
      ).id;
    const pending = async () => (await gw.internals.deliveryStore.duePushes(Number.MAX_SAFE_INTEGER, 100)).length;

    // Healthy: acknowledged in time, so the pending push is dropped unsent.
    const healthy = await publish(0);
    await eventually('the healthy event handled', () => onPhone.ids.includes(healthy));
    await recordUntil(gw, healthy, 'its receipt', (r) => r.users[0]!.acknowledged);
    await eventually('its pending push settled', async () => (await pending()) === 0);

    // Dead zone: the socket stays open on the server, nothing gets through.
    proxy.blackhole();
    const lost = [await publish(1), await publish(2)];
    await eventually('one push per lost event', () => lost.every((id) => webhook.pushesOf(id).length === 1));
    for (const id of lost) {
      const [body] = webhook.pushesOf(id);
      expect(body!.devices.map((d) => d.token)).toEqual(['apns-1']);
      const report = (await deliveries(gw, id))!;
      expect(report.users[0]!.pushes).toEqual([{ at: expect.any(Number), reason: 'no_receipt' }]);
      expect(report.users[0]!.devices[0]!.acknowledgedAt).toBeNull();
    }
    expect(gw.gateway.sessions()).toHaveLength(1); // the server still counts the dead socket as connected

    // Another device of the user acknowledges: no push for what it received.
    const tablet = track(await loggedInClient('socket.io', user, { httpUrl: gw.url, realtimeUrl: gw.url }));
    const onTablet = seen(tablet, 'order_ready');
    tablet.client.connect();
    await reaches(tablet, 'connected');
    const later = await publish(3);
    await eventually('the tablet handled it', () => onTablet.ids.includes(later));
    await recordUntil(gw, later, 'its receipt', (r) => r.users[0]!.acknowledged);
    await eventually('its pending push settled', async () => (await pending()) === 0);
    expect(webhook.pushesOf(later)).toHaveLength(0);
    for (const id of lost) expect(webhook.pushesOf(id)).toHaveLength(1);
    expect(webhook.received.map((b) => b.id)).toEqual(lost);
    expect((await gw.http('GET', '/metrics')).body).toMatch(/tether_receipt_pushes_total 2\b/);
  }, 60_000);

  it('sends pushes still pending at a restart once, after the restart', async () => {
    const webhook = track(new Webhook());
    const dataDir = mkdtempSync(join(tmpdir(), 'tether-receipts-'));
    const env: Env = {
      DATA_DIR: dataDir,
      JWT_SECRET: randomBytes(48).toString('base64url'),
      PUSH_WEBHOOK_URL: await webhook.listen(),
      RECEIPT_PUSH_AFTER_MS: '2000',
    };
    const first = await startGateway(env);
    let firstClosed = false;
    cleanups.push(() => (firstClosed ? undefined : first.close()));
    expect(
      (await first.api('POST', '/v1/devices', { userId: 'kds-1', platform: 'android', token: 'fcm-1' })).status,
    ).toBe(201);
    // A plain client: connected, never acknowledges.
    const plain = await plainClient(first, first.url, 'kds-1');
    const ids: string[] = [];
    for (let n = 0; n < 3; n++) {
      const res = await first.api('POST', '/v1/publish', { event: 'order', data: { n }, to: { users: ['kds-1'] } });
      ids.push((res.body as { id: string }).id);
    }
    await eventFrame(plain, ids[2]!);
    await first.close();
    firstClosed = true;
    expect(webhook.received).toHaveLength(0);

    const second = track(await startGateway(env));
    await eventually('each pending push sent after the restart', () =>
      ids.every((id) => webhook.pushesOf(id).length === 1),
    );
    await eventually(
      'none left pending',
      async () => (await second.internals.deliveryStore.duePushes(Number.MAX_SAFE_INTEGER, 100)).length === 0,
    );
    // Another sweep or two pass: still exactly one each.
    await new Promise((done) => setTimeout(done, 1200));
    for (const id of ids) expect(webhook.pushesOf(id)).toHaveLength(1);
  }, 60_000);
});

describe('connection timeline', () => {
  it('shows two devices, a reauth, a warning, an expiry and an admin kick in order with codes', async () => {
    const gw = track(
      await startGateway({
        JWT_EXPIRATION_SECONDS: '4',
        TOKEN_EXPIRY_WARNING_SECONDS: '2',
        AUTH_RATE_PER_MINUTE: '1000',
      }),
    );
    const user = await provisionUser(gw);
    const phone = track(await loggedInClient('ws', user, { httpUrl: gw.url, realtimeUrl: gw.url }));
    phone.client.connect();
    await reaches(phone, 'connected');
    // The second device: a kitchen display with a token nobody renews.
    const display = track(new WsClient(gw.url));
    await display.opened();
    display.send({ type: 'authenticate', token: gw.sign({ sub: user.id, sid: 'display-login' }, 4) });
    await display.next((f) => f.type === 'session_created');
    await display.next((f) => f.type === 'token_expiring');
    await display.next((f) => f.type === 'auth_error' && f.code === 'AUTH_EXPIRED');
    await eventually('the phone reauthed', () =>
      gw.gateway.sessions().some((s) => s.userId === user.id && s.expiresAt > Date.now() + 2500),
    );
    expect((await gw.api('POST', `/v1/users/${user.id}/disconnect`)).status).toBe(200);
    await reaches(phone, 'failed');

    let timeline: TimelineReport | undefined;
    await eventually('the kick is in the timeline', async () => {
      timeline = (await gw.api('GET', `/v1/users/${user.id}/timeline`)).body as TimelineReport;
      return timeline.entries.some((e) => e.kind === 'revoked');
    });
    const entries = timeline!.entries;
    const steps = (device: string) => entries.filter((e) => e.device === device).map((e) => [e.kind, e.code]);
    expect(steps('display-login')).toEqual([
      ['connect', null],
      ['warning', null],
      ['expired', 'AUTH_EXPIRED'],
    ]);
    const phoneDevice = entries.find((e) => e.device !== 'display-login')!.device;
    const phoneSteps = steps(phoneDevice);
    expect(phoneSteps[0]).toEqual(['connect', null]);
    expect(phoneSteps).toContainEqual(['reauth', null]);
    expect(phoneSteps.at(-1)).toEqual(['revoked', 'AUTH_REVOKED']);
    expect(entries.at(-1)!.detail).toEqual({ message: 'Signed out by an administrator' });
    expect(phoneSteps.findIndex((s) => s[0] === 'reauth')).toBeLessThan(phoneSteps.length - 1);
    // In time order overall, with transport and node on each entry.
    const times = entries.map((e) => e.at);
    expect([...times].sort((x, y) => x - y)).toEqual(times);
    expect(entries.every((e) => e.transport === 'ws' && e.node.length > 0)).toBe(true);
    expect(entries.find((e) => e.kind === 'connect')!.detail).toMatchObject({ tokenSource: expect.any(String) });
    expect(entries.findIndex((e) => e.kind === 'expired')).toBeLessThan(entries.findIndex((e) => e.kind === 'revoked'));
  }, 60_000);
});

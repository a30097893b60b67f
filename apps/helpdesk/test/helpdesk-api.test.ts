import { randomUUID } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  AdminStatsDto,
  DeliveryReportDto,
  DirectMessageDto,
  MessageDto,
  TicketDetailDto,
  TicketDto,
  TimelineDto,
} from '../src/server/domain/dto.js';
import { DEMO_STAFF } from '../src/server/seed.js';
import { startTestHelpdesk, type TestHelpdesk } from './helpers.js';

type Body = Record<string, unknown>;

/**
 * A socket.io client that records every application event it receives, in order. It asks for the
 * event metadata (`auth.meta`), so each event also carries its publish id.
 */
interface Client {
  socket: Socket;
  events: { event: string; data: Body; meta: { id: string } }[];
  /** Resolves with the first event (already received or future) matching. */
  next(event: string, match?: (data: Body) => boolean): Promise<Body>;
  count(event: string, match?: (data: Body) => boolean): number;
}

function connect(url: string, token: string): Promise<Client> {
  const socket = io(url, { auth: { token, meta: true }, transports: ['websocket'], reconnection: false });
  const events: Client['events'] = [];
  const waiters: { event: string; match: (d: Body) => boolean; resolve: (d: Body) => void }[] = [];
  socket.onAny((event: string, data: Body, meta: { id: string }) => {
    events.push({ event, data, meta });
    for (const w of [...waiters]) {
      if (w.event === event && w.match(data)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(data);
      }
    }
  });
  const client: Client = {
    socket,
    events,
    next(event, match = () => true) {
      const seen = events.find((e) => e.event === event && match(e.data));
      if (seen) return Promise.resolve(seen.data);
      return new Promise((resolve) => waiters.push({ event, match, resolve }));
    },
    count: (event, match = () => true) => events.filter((e) => e.event === event && match(e.data)).length,
  };
  return new Promise((resolve, reject) => {
    socket.once('session_created', () => resolve(client));
    socket.once('connect_error', reject);
  });
}

const staff = (email: string) => DEMO_STAFF.find((s) => s.email === email)!;

describe.each(['sqlite', 'postgres'] as const)('helpdesk API and realtime events (%s)', (store) => {
  let hd: TestHelpdesk;
  const tokens: Record<string, string> = {};
  const ids: Record<string, string> = {};
  const clients: Client[] = [];
  let admin: Client, kiharu: Client, nakuru: Client, guest: Client;
  let guestToken = '';
  let ticket: TicketDto;

  const login = async (email: string) => {
    const s = staff(email);
    const res = await hd.http('POST', '/auth/login', { body: { email: s.email, password: s.password } });
    expect(res.status).toBe(200);
    const body = res.body as { access_token: string; user: { id: string } };
    tokens[email] = body.access_token;
    ids[email] = body.user.id;
    return body.access_token;
  };

  beforeAll(async () => {
    hd = await startTestHelpdesk(store, {}, { statsIntervalMs: 200 });
    admin = await connect(hd.url, await login('admin@helpdesk.demo'));
    kiharu = await connect(hd.url, await login('eo.kiharu@helpdesk.demo'));
    nakuru = await connect(hd.url, await login('eo.nakuru@helpdesk.demo'));
    const g = await hd.http('POST', '/auth/guest');
    guestToken = (g.body as { access_token: string }).access_token;
    guest = await connect(hd.url, guestToken);
    clients.push(admin, kiharu, nakuru, guest);
  });

  afterAll(async () => {
    for (const c of clients) c.socket.close();
    await hd?.close();
  });

  it('a guest opens a ticket in a ward: admins and the district EO get ticket_created and whispers once, the other region never', async () => {
    const res = await hd.http('POST', '/api/guest/tickets', {
      token: guestToken,
      body: {
        ward: 'ke/muranga/kiharu/mbiri',
        name: 'Mary',
        body: 'My maize leaves are turning yellow',
        id: randomUUID(),
      },
    });
    expect(res.status).toBe(201);
    ticket = (res.body as TicketDetailDto).ticket;
    const byTicket = (d: Body) => (d['ticket'] as TicketDto).id === ticket.id;
    await Promise.all([admin.next('ticket_created', byTicket), kiharu.next('ticket_created', byTicket)]);
    const whisper = (
      await kiharu.next('whisper', (d) => (d['whisper'] as { ticketId: string }).ticketId === ticket.id)
    )['whisper'] as { rule: string };
    expect(whisper.rule).toBe('maize-yellowing');

    // A later ticket in Nakuru reaches the Nakuru EO; events arrive in order, so the Mbiri one never will.
    const other = await hd.http('POST', '/api/guest/tickets', {
      token: guestToken,
      body: { ward: 'ke/nakuru/njoro/mauche', name: 'Mary', body: 'price of maize?' },
    });
    const otherId = (other.body as TicketDetailDto).ticket.id;
    await nakuru.next('ticket_created', (d) => (d['ticket'] as TicketDto).id === otherId);
    expect(nakuru.count('ticket_created', byTicket)).toBe(0);
    expect(nakuru.count('whisper', (d) => (d['whisper'] as { ticketId: string }).ticketId === ticket.id)).toBe(0);
    expect(admin.count('ticket_created', byTicket)).toBe(1);
    expect(kiharu.count('ticket_created', byTicket)).toBe(1);
    // The customer never sees whispers.
    expect(guest.count('whisper')).toBe(0);
  });

  it('lists tickets by grant with unread counts, and hides tickets outside the grant', async () => {
    const list = await hd.http('GET', '/api/tickets?status=open', { token: tokens['eo.kiharu@helpdesk.demo'] });
    const mine = (list.body as TicketDto[]).find((t) => t.id === ticket.id);
    expect(mine?.unread).toBe(1);
    expect((list.body as TicketDto[]).every((t) => t.ward.startsWith('ke/muranga/kiharu/'))).toBe(true);
    expect(
      (await hd.http('GET', `/api/tickets/${ticket.id}`, { token: tokens['eo.nakuru@helpdesk.demo'] })).status,
    ).toBe(404);

    const detail = await hd.http('GET', `/api/tickets/${ticket.id}`, { token: tokens['eo.kiharu@helpdesk.demo'] });
    expect((detail.body as TicketDetailDto).messages).toHaveLength(1);
    expect((detail.body as TicketDetailDto).whispers.length).toBeGreaterThan(0);
    await hd.http('POST', `/api/tickets/${ticket.id}/read`, { token: tokens['eo.kiharu@helpdesk.demo'] });
    const after = await hd.http('GET', '/api/tickets', { token: tokens['eo.kiharu@helpdesk.demo'] });
    expect((after.body as TicketDto[]).find((t) => t.id === ticket.id)?.unread).toBe(0);
  });

  it('a staff reply reaches the guest live; a retried reply with the same id is stored and sent once', async () => {
    const id = randomUUID();
    const send = () =>
      hd.http('POST', `/api/tickets/${ticket.id}/messages`, {
        token: tokens['eo.kiharu@helpdesk.demo'],
        body: { id, body: 'Top-dress with CAN' },
      });
    const first = await send();
    expect(first.status).toBe(201);
    const retry = await send();
    expect(retry.body).toEqual(first.body);
    const live = await guest.next('message_received', (d) => (d['message'] as MessageDto).id === id);
    // The message id is the publish id, so a retried reply is one event.
    expect(guest.events.find((e) => e.data === live)?.meta.id).toBe(id);
    expect(live['id']).toBeUndefined();
    expect((live['message'] as MessageDto).authorKind).toBe('staff');
    // A later message is a marker: once it has arrived, a duplicate of the first would have too.
    await hd.http('POST', `/api/guest/tickets/${ticket.id}/messages`, {
      token: guestToken,
      body: { body: 'thank you!' },
    });
    await admin.next('message_received', (d) => (d['message'] as MessageDto).body === 'thank you!');
    await guest.next('message_received', (d) => (d['message'] as MessageDto).body === 'thank you!');
    expect(guest.count('message_received', (d) => (d['message'] as MessageDto).id === id)).toBe(1);
    expect(admin.count('message_received', (d) => (d['message'] as MessageDto).id === id)).toBe(1);
    const detail = await hd.http('GET', `/api/tickets/${ticket.id}`, { token: tokens['admin@helpdesk.demo'] });
    expect((detail.body as TicketDetailDto).messages.filter((m) => m.id === id)).toHaveLength(1);
  });

  it('resolving reaches every staff device of the ward and the customer; a guest cannot resolve', async () => {
    expect((await hd.http('POST', `/api/tickets/${ticket.id}/resolve`, { token: guestToken })).status).toBe(403);
    const res = await hd.http('POST', `/api/tickets/${ticket.id}/resolve`, { token: tokens['admin@helpdesk.demo'] });
    expect((res.body as TicketDto).status).toBe('resolved');
    const byTicket = (d: Body) => (d['ticket'] as TicketDto).id === ticket.id;
    await Promise.all([
      admin.next('ticket_resolved', byTicket),
      kiharu.next('ticket_resolved', byTicket),
      guest.next('ticket_resolved', byTicket),
    ]);
    const resolved = await hd.http('GET', '/api/tickets?status=resolved', { token: tokens['eo.kiharu@helpdesk.demo'] });
    expect((resolved.body as TicketDto[]).map((t) => t.id)).toContain(ticket.id);
  });

  it('direct messages reach both users; reading sends message_read to both', async () => {
    const kiharuId = ids['eo.kiharu@helpdesk.demo']!;
    const adminId = ids['admin@helpdesk.demo']!;
    const sent = await hd.http('POST', `/api/dm/${kiharuId}`, {
      token: tokens['admin@helpdesk.demo'],
      body: { body: 'Can you call Mary?' },
    });
    expect(sent.status).toBe(201);
    const dm = sent.body as DirectMessageDto;
    await Promise.all([
      kiharu.next('direct_message', (d) => (d['message'] as DirectMessageDto).id === dm.id),
      admin.next('direct_message', (d) => (d['message'] as DirectMessageDto).id === dm.id),
    ]);
    const unread = await hd.http('GET', '/api/staff', { token: tokens['eo.kiharu@helpdesk.demo'] });
    expect((unread.body as { unread: Record<string, number> }).unread[adminId]).toBe(1);
    const read = await hd.http('POST', `/api/dm/${adminId}/read`, { token: tokens['eo.kiharu@helpdesk.demo'] });
    expect((read.body as { ids: string[] }).ids).toEqual([dm.id]);
    const receipt = await admin.next('message_read', (d) => (d['ids'] as string[]).includes(dm.id));
    expect(receipt['readerId']).toBe(kiharuId);
    const convo = await hd.http('GET', `/api/dm/${kiharuId}`, { token: tokens['admin@helpdesk.demo'] });
    expect((convo.body as DirectMessageDto[])[0]?.readAt).toEqual(expect.any(Number));
  });

  it("the staff page's reads are client events on its socket: ticket_read and dm_read apply the same rules as the routes", async () => {
    const send = (c: Client, event: string, data: unknown) =>
      c.socket.emitWithAck('send', { event, data, key: randomUUID() }) as Promise<Record<string, unknown>>;
    const unreadOf = async (email: string) => {
      const lists = await Promise.all(
        ['open', 'resolved'].map((status) => hd.http('GET', `/api/tickets?status=${status}`, { token: tokens[email] })),
      );
      return lists.flatMap((l) => l.body as TicketDto[]).find((t) => t.id === ticket.id)?.unread;
    };

    // The admin has not opened the ticket yet; reading it over the socket clears the count.
    expect(await unreadOf('admin@helpdesk.demo')).toBeGreaterThan(0);
    expect(await send(admin, 'ticket_read', { ticketId: ticket.id })).toEqual({ ok: true, result: null });
    expect(await unreadOf('admin@helpdesk.demo')).toBe(0);

    // Outside the sender's grant, from a guest, or malformed: refused in the ack, nothing applied.
    expect(await send(nakuru, 'ticket_read', { ticketId: ticket.id })).toMatchObject({ ok: false, code: 'NOT_FOUND' });
    expect(await send(guest, 'ticket_read', { ticketId: ticket.id })).toMatchObject({ ok: false, code: 'FORBIDDEN' });
    expect(await send(admin, 'ticket_read', { ticket: 1 })).toMatchObject({
      ok: false,
      code: 'VALIDATION_FAILED',
      message: 'ticketId: Invalid input: expected string, received undefined',
    });

    // dm_read answers what it marked and sends the receipt to both users.
    const kiharuId = ids['eo.kiharu@helpdesk.demo']!;
    const nakuruId = ids['eo.nakuru@helpdesk.demo']!;
    const sent = await hd.http('POST', `/api/dm/${nakuruId}`, {
      token: tokens['eo.kiharu@helpdesk.demo'],
      body: { body: 'Mary called back' },
    });
    const dm = sent.body as DirectMessageDto;
    await nakuru.next('direct_message', (d) => (d['message'] as DirectMessageDto).id === dm.id);
    const ack = await send(nakuru, 'dm_read', { peerId: kiharuId });
    expect(ack).toMatchObject({ ok: true, result: { ids: [dm.id], readAt: expect.any(Number) } });
    const receipt = await kiharu.next('message_read', (d) => (d['ids'] as string[]).includes(dm.id));
    expect(receipt['readerId']).toBe(nakuruId);
  });

  it("an admin looks up a direct message's deliveries (device, path, receipt) and the recipient's timeline; others are refused", async () => {
    const adminToken = tokens['admin@helpdesk.demo'];
    const kiharuId = ids['eo.kiharu@helpdesk.demo']!;
    const adminId = ids['admin@helpdesk.demo']!;
    const sent = await hd.http('POST', `/api/dm/${kiharuId}`, { token: adminToken, body: { body: 'Delivered?' } });
    const dm = sent.body as DirectMessageDto;
    await kiharu.next('direct_message', (d) => (d['message'] as DirectMessageDto).id === dm.id);
    // The message id is the event id; the officer's client acknowledges it as the SDK does.
    expect(kiharu.events.find((e) => e.event === 'direct_message' && e.meta.id === dm.id)).toBeDefined();
    kiharu.socket.emit('receipt', { ids: [dm.id] });

    // The dashboard lists it among the recent user-addressed events, with its addressees.
    const stats = (await hd.http('GET', '/api/admin/stats', { token: adminToken })).body as AdminStatsDto;
    expect(stats.recentEvents[0]).toMatchObject({ id: dm.id, event: 'direct_message', users: [adminId, kiharuId] });

    const path = `/api/admin/events/${encodeURIComponent(dm.id)}/deliveries`;
    const kiharuDevice = async () => {
      const res = await hd.http('GET', path, { token: adminToken });
      expect(res.status).toBe(200);
      return (res.body as DeliveryReportDto).users.find((u) => u.userId === kiharuId)?.devices[0];
    };
    await expect
      .poll(async () => (await kiharuDevice())?.acknowledgedAt, { timeout: 5000 })
      .toEqual(expect.any(Number));
    const report = (await hd.http('GET', path, { token: adminToken })).body as DeliveryReportDto;
    expect(report).toMatchObject({ id: dm.id, event: 'direct_message', publishedAt: expect.any(Number) });
    expect(report.users.map((u) => u.userId).sort()).toEqual([adminId, kiharuId].sort());
    const officer = report.users.find((u) => u.userId === kiharuId)!;
    expect(officer).toMatchObject({ acknowledged: true, pushes: [] });
    expect(officer.devices).toEqual([
      {
        sessionId: expect.any(String),
        device: expect.any(String),
        deviceName: expect.any(String),
        transport: 'socket.io',
        node: expect.any(String),
        path: 'live',
        deliveredAt: expect.any(Number),
        acknowledgedAt: expect.any(Number),
      },
    ]);
    expect(officer.devices[0]!.acknowledgedAt!).toBeGreaterThanOrEqual(officer.devices[0]!.deliveredAt);
    // The admin's own socket got it too and sent no receipt: one unacknowledged delivery.
    const own = report.users.find((u) => u.userId === adminId)!;
    expect(own.acknowledged).toBe(false);
    expect(own.devices.map((d) => d.acknowledgedAt)).toEqual([null]);
    expect(report.unacknowledged).toBe(1);

    const timeline = await hd.http('GET', `/api/admin/users/${kiharuId}/timeline`, { token: adminToken });
    expect(timeline.status).toBe(200);
    const t = timeline.body as TimelineDto;
    expect(t.userId).toBe(kiharuId);
    expect(t.reconnectsLastHour).toEqual(expect.any(Number));
    const connect = t.entries.find((e) => e.kind === 'connect')!;
    expect(connect).toMatchObject({
      at: expect.any(Number),
      transport: 'socket.io',
      code: null,
      revokedBy: null,
      sessionId: officer.devices[0]!.sessionId,
      deviceName: officer.devices[0]!.deviceName,
    });
    expect(t.devices).toEqual([
      expect.objectContaining({ sessionId: connect.sessionId, userId: kiharuId, transport: 'socket.io' }),
    ]);
    expect(t.devices[0]!.rttMs === null || typeof t.devices[0]!.rttMs === 'number').toBe(true);

    // Admins only, as the rest of the dashboard.
    for (const token of [tokens['eo.kiharu@helpdesk.demo'], guestToken]) {
      expect((await hd.http('GET', path, { token })).status).toBe(403);
      expect((await hd.http('GET', `/api/admin/users/${kiharuId}/timeline`, { token })).status).toBe(403);
    }
    expect((await hd.http('GET', path)).status).toBe(401);
    // Nothing recorded under an id: 404 with the usual error body; a bad query: 400.
    const unknown = await hd.http('GET', `/api/admin/events/${randomUUID()}/deliveries`, { token: adminToken });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ code: 'NOT_FOUND', message: expect.any(String) });
    const bad = await hd.http('GET', `/api/admin/users/${kiharuId}/timeline?limit=0`, { token: adminToken });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'VALIDATION_FAILED' });
    const tooLong = await hd.http('GET', `/api/admin/events/${'x'.repeat(201)}/deliveries`, { token: adminToken });
    expect(tooLong.status).toBe(400);
  });

  it('the dashboard is for admins only and lists live connections; disconnecting a user revokes its sessions', async () => {
    expect((await hd.http('GET', '/api/admin/stats', { token: tokens['eo.kiharu@helpdesk.demo'] })).status).toBe(403);
    const stats = await admin.next('admin_stats', (d) => (d['connections'] as unknown[]).length >= 4);
    const nakuruId = ids['eo.nakuru@helpdesk.demo']!;
    expect((stats['connections'] as { userId: string }[]).map((c) => c.userId)).toContain(nakuruId);
    const revoked = new Promise<Body>((resolve) => nakuru.socket.once('auth_error', resolve));
    const res = await hd.http('POST', `/api/admin/users/${nakuruId}/disconnect`, {
      token: tokens['admin@helpdesk.demo'],
    });
    expect(res.body).toEqual({ disconnected: 1 });
    expect((await revoked)['code']).toBe('AUTH_REVOKED');
    await admin.next('auth_event', (d) => d['type'] === 'revoked' && d['userId'] === nakuruId);
    expect((await hd.http('GET', '/api/tickets', { token: tokens['eo.nakuru@helpdesk.demo'] })).status).toBe(401);
    // Their timeline says an administrator (this one) did it.
    const timeline = await hd.http('GET', `/api/admin/users/${nakuruId}/timeline`, {
      token: tokens['admin@helpdesk.demo'],
    });
    const revokedEntry = (timeline.body as TimelineDto).entries.find((e) => e.kind === 'revoked');
    expect(revokedEntry).toMatchObject({ code: 'AUTH_REVOKED', revokedBy: 'Amina Admin' });
    expect((timeline.body as TimelineDto).devices).toEqual([]);
  });

  it("a refused token reaches the admin's auth-event feed with the check that failed, never the token", async () => {
    const forged = `${tokens['admin@helpdesk.demo']!.slice(0, -4)}AAAA`;
    const refused = io(hd.url, { auth: { token: forged }, transports: ['websocket'], reconnection: false });
    const error = await new Promise<Error & { data?: { code?: string } }>((resolve) =>
      refused.once('connect_error', resolve),
    );
    refused.close();
    expect(error.data?.code).toBe('AUTH_INVALID');
    const event = await admin.next(
      'auth_event',
      (d) => (d['failure'] as { check?: string } | undefined)?.check === 'signature',
    );
    expect(event['code']).toBe('AUTH_INVALID');
    expect(JSON.stringify(event)).not.toContain(forged.split('.')[2]!);
  });

  it('refuses bad input with the registry codes', async () => {
    const bad = await hd.http('POST', '/api/guest/tickets', {
      token: guestToken,
      body: { ward: 'ke/muranga', name: 'x', body: 'hi' },
    });
    expect(bad.status).toBe(400);
    expect((bad.body as { code: string }).code).toBe('VALIDATION_FAILED');
    expect((await hd.http('GET', '/api/tickets')).status).toBe(401);
    expect(
      (
        await hd.http('POST', '/api/guest/tickets', {
          token: tokens['admin@helpdesk.demo'],
          body: { ward: 'ke/muranga/kiharu/mbiri', name: 'x', body: 'hi' },
        })
      ).status,
    ).toBe(403);
  });
});

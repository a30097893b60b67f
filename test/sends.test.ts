import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TetherError, type SendAck } from '@tether/protocol';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { SioClient, WsClient, eventually } from './helpers/realtime.js';

/** Sends over either transport, each answered with its ack. */
interface Sender {
  send(event: string, data: unknown, key: string): Promise<SendAck>;
  close(): void;
}

async function sioSender(gw: TestGateway, sub: string): Promise<Sender> {
  const c = new SioClient(gw.url, { auth: { token: gw.sign({ sub }) } });
  await c.session();
  return { send: (event, data, key) => c.request<SendAck>('send', { event, data, key }), close: () => c.close() };
}

async function wsSender(gw: TestGateway, sub: string): Promise<Sender> {
  const c = new WsClient(gw.url, { headers: { authorization: `Bearer ${gw.sign({ sub })}` } });
  await c.first('session_created');
  let rid = 0;
  return {
    async send(event, data, key) {
      const id = `r${++rid}`;
      c.send({ type: 'send', event, data, key, rid: id });
      const { type: _type, rid: _rid, ...ack } = await c.next((f) => f.type === 'send_ack' && f.rid === id);
      return ack as SendAck;
    },
    close: () => c.close(),
  };
}

const senders = { 'socket.io': sioSender, ws: wsSender };

describe('client → server sends with an in-process handler', () => {
  let gw: TestGateway;
  const open: Sender[] = [];
  const calls: Array<{ userId: string; data: unknown }> = [];

  beforeAll(async () => {
    gw = await startGateway({ JWT_EXPIRATION_SECONDS: '600' });
    gw.gateway.onClientEvent('chat_message', async (ctx, data) => {
      calls.push({ userId: ctx.userId, data });
      await new Promise((resolve) => setTimeout(resolve, 50)); // long enough for retries to race it
      return { stored: calls.length };
    });
    gw.gateway.onClientEvent('strict', () => {
      throw new TetherError('VALIDATION_FAILED', 'text is required');
    });
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
    calls.length = 0;
  });
  afterAll(async () => {
    await gw?.close();
  });

  for (const [kind, make] of Object.entries(senders)) {
    it(`${kind}: a send retried three times with the same key reaches the handler once, and every retry gets the same ack`, async () => {
      const s = await make(gw, `sender-${kind}`);
      open.push(s);
      // The first two race each other; the last two come after the first was answered.
      const acks = await Promise.all([
        s.send('chat_message', { text: 'hi' }, 'key-1'),
        s.send('chat_message', { text: 'hi' }, 'key-1'),
      ]);
      acks.push(
        await s.send('chat_message', { text: 'hi' }, 'key-1'),
        await s.send('chat_message', { text: 'hi' }, 'key-1'),
      );
      expect(calls).toEqual([{ userId: `sender-${kind}`, data: { text: 'hi' } }]);
      for (const ack of acks) expect(ack).toEqual({ ok: true, result: { stored: 1 } });
      // Another key is another send.
      expect(await s.send('chat_message', { text: 'again' }, 'key-2')).toEqual({ ok: true, result: { stored: 2 } });
    });

    it(`${kind}: a retry after the connection dropped before the ack is applied once`, async () => {
      const first = await make(gw, `dropper-${kind}`);
      void first.send('chat_message', { text: 'once' }, 'lost-ack').catch(() => undefined);
      await eventually('the handler runs', () => calls.length === 1);
      first.close(); // the handler is still working: its ack has nowhere to go
      const second = await make(gw, `dropper-${kind}`);
      open.push(second);
      expect(await second.send('chat_message', { text: 'once' }, 'lost-ack')).toEqual({
        ok: true,
        result: { stored: 1 },
      });
      expect(calls).toHaveLength(1);
    });

    it(`${kind}: the same key from another user is another send`, async () => {
      const a = await make(gw, `alice-${kind}`);
      const b = await make(gw, `bob-${kind}`);
      open.push(a, b);
      await a.send('chat_message', {}, 'shared-key');
      await b.send('chat_message', {}, 'shared-key');
      expect(calls.map((c) => c.userId)).toEqual([`alice-${kind}`, `bob-${kind}`]);
    });

    it(`${kind}: unknown events, bad keys and handler refusals answer coded errors`, async () => {
      const s = await make(gw, `errors-${kind}`);
      open.push(s);
      expect(await s.send('nobody_listens', {}, 'k')).toMatchObject({ ok: false, code: 'NOT_FOUND' });
      expect(await s.send('chat_message', {}, '')).toMatchObject({ ok: false, code: 'VALIDATION_FAILED' });
      expect(await s.send('strict', {}, 'k2')).toEqual({
        ok: false,
        code: 'VALIDATION_FAILED',
        message: 'text is required',
      });
    });
  }
});

describe('client → server sends forwarded to CLIENT_EVENTS_URL', () => {
  let app: Server;
  let gw: TestGateway;
  const received: Array<{ body: Record<string, unknown>; key: string | undefined; auth: string | undefined }> = [];
  /** Answers the app gives before it answers 200 (e.g. [503] = one failure first). */
  let failures: number[] = [];

  beforeAll(async () => {
    app = createServer((req, res) => {
      void readJson(req).then((body) => {
        received.push({
          body,
          key: req.headers['idempotency-key'] as string | undefined,
          auth: req.headers.authorization,
        });
        const status = failures.shift();
        if (status !== undefined) {
          res.writeHead(status).end(JSON.stringify({ code: 'NOT_FOUND', message: 'no such room' }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ accepted: body.event }));
      });
    });
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    const { port } = app.address() as AddressInfo;
    gw = await startGateway({
      JWT_EXPIRATION_SECONDS: '600',
      CLIENT_EVENTS_URL: `http://127.0.0.1:${port}/tether/events`,
    });
  });
  afterEach(() => {
    received.length = 0;
    failures = [];
  });
  afterAll(async () => {
    await gw?.close();
    app?.close();
  });

  it('a send retried three times with the same key is posted to the app once, with the key and the sender', async () => {
    const s = await sioSender(gw, 'hooked');
    try {
      const acks = [];
      for (let i = 0; i < 3; i++) acks.push(await s.send('ticket_reply', { text: 'hello' }, 'hook-key-1'));
      for (const ack of acks) expect(ack).toEqual({ ok: true, result: { accepted: 'ticket_reply' } });
      expect(received).toHaveLength(1);
      expect(received[0]?.body).toMatchObject({
        event: 'ticket_reply',
        data: { text: 'hello' },
        key: 'hook-key-1',
        userId: 'hooked',
        sessionId: expect.any(String),
      });
      expect(received[0]?.key).toBe('hook-key-1');
      expect(received[0]?.auth).toBe(`Bearer ${gw.apiKey}`);
    } finally {
      s.close();
    }
  });

  it('an app answering 5xx is retried with the same key until it answers', async () => {
    failures = [503, 502];
    const s = await wsSender(gw, 'hooked-ws');
    try {
      expect(await s.send('ticket_reply', { text: 'x' }, 'hook-key-2')).toEqual({
        ok: true,
        result: { accepted: 'ticket_reply' },
      });
      expect(received.map((r) => r.key)).toEqual(['hook-key-2', 'hook-key-2', 'hook-key-2']);
    } finally {
      s.close();
    }
  });

  it("an app's 4xx refusal is passed on with its code and kept for retries", async () => {
    failures = [404];
    const s = await sioSender(gw, 'refused');
    try {
      const refusal = { ok: false, code: 'NOT_FOUND', message: 'no such room' };
      expect(await s.send('join', {}, 'hook-key-3')).toEqual(refusal);
      expect(await s.send('join', {}, 'hook-key-3')).toEqual(refusal);
      expect(received).toHaveLength(1);
    } finally {
      s.close();
    }
  });
});

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    req.on('end', () => resolve(JSON.parse(text || '{}') as Record<string, unknown>));
  });
}

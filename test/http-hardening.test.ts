import { connect, type Socket } from 'node:net';
import { ERRORS, isErrorCode, type ErrorCode } from '@tether/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { SioClient, WAIT_MS, WsClient, waitUntil } from './helpers/realtime.js';

/** `{"a":{"a":…1…}}`: a JSON text `depth` objects deep. */
const nested = (depth: number): string => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

/** A publish body whose `data` is `dataDepth` objects deep (the body itself is one more). */
const deepPublish = (dataDepth: number): string =>
  `{"event":"deep","to":{"users":["nobody"]},"data":${nested(dataDepth)}}`;

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- bodies are asserted field by field
  body: any;
}

/** Parses one HTTP/1.1 answer from the bytes received so far; undefined until it is complete. */
function parseAnswer(buffer: Buffer): RawAnswer | undefined {
  const end = buffer.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...lines] = buffer.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  if (buffer.length < end + 4 + length) return undefined;
  const text = buffer.subarray(end + 4, end + 4 + length).toString('utf8');
  let body: unknown = text;
  try {
    body = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON: kept as text, and the assertions say so.
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1]), headers, body };
}

/** Sends `bytes` as they are on a fresh connection and resolves with the answer (or rejects on close without one). */
function exchange(port: number, bytes: string): Promise<RawAnswer> {
  return new Promise<RawAnswer>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    let buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${WAIT_MS} ms`));
    }, WAIT_MS);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const answer = parseAnswer(buffer);
      if (answer === undefined) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`connection closed without a full answer (got ${JSON.stringify(buffer.toString('latin1'))})`));
    });
  });
}

/** Asserts the answer is the registry's: its status, and a `{code, message, timestamp}` JSON body. */
function expectRegistryAnswer(answer: { status: number; body: unknown }, code: ErrorCode): void {
  expect(answer.body, JSON.stringify(answer.body)).toMatchObject({
    code,
    message: expect.any(String),
    timestamp: expect.any(Number),
  });
  expect(answer.status).toBe(ERRORS[code].httpStatus);
}

/**
 * A request whose head (or body) is sent one byte every `everyMs`, as a slowloris client does.
 * `outcome()` resolves when the server closes the connection, with the answer if one came.
 */
class SlowRequest {
  private readonly socket: Socket;
  private timer: NodeJS.Timeout | undefined;
  private buffer = Buffer.alloc(0);
  private readonly closed: Promise<{ answer: RawAnswer | undefined; at: number }>;
  readonly started: Promise<void>;

  constructor(port: number, mode: 'body' | 'head', everyMs: number) {
    const head = 'POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n';
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('error', () => undefined);
    this.socket.on('data', (chunk: Buffer) => (this.buffer = Buffer.concat([this.buffer, chunk])));
    this.closed = new Promise((resolve) =>
      this.socket.on('close', () => {
        clearInterval(this.timer);
        resolve({ answer: parseAnswer(this.buffer), at: Date.now() });
      }),
    );
    this.started = new Promise<void>((resolve) =>
      this.socket.once('connect', () => {
        // Body mode: a complete head announcing 100 kB, then the body a byte at a time.
        // Head mode: a head that never ends, one more header byte at a time.
        const first = mode === 'body' ? head + 'Content-Length: 100000\r\n\r\n{' : head + 'X-Slow: ';
        this.socket.write(first, () => resolve());
        this.timer = setInterval(() => {
          if (!this.socket.destroyed) this.socket.write(mode === 'body' ? ' ' : 'a');
        }, everyMs);
      }),
    );
  }

  outcome(): Promise<{ answer: RawAnswer | undefined; at: number }> {
    return this.closed;
  }

  destroy(): void {
    clearInterval(this.timer);
    this.socket.destroy();
  }
}

describe('JSON nesting depth (MAX_JSON_DEPTH, default 64)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.close());

  const publish = (body: string, headers: Record<string, string> = {}) =>
    fetch(gw.url + '/v1/publish', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.apiKey}`, ...headers },
      body,
    }).then(async (res) => ({ status: res.status, body: (await res.json()) as unknown }));

  it('refuses a publish whose data nests 5,000 or 100,000 levels with a non-retryable 400, not a 503', async () => {
    for (const depth of [5_000, 100_000]) {
      const res = await publish(deepPublish(depth));
      expectRegistryAnswer(res, 'VALIDATION_FAILED');
      expect(ERRORS.VALIDATION_FAILED.retryable).toBe(false);
    }
    const arrays = await publish(
      `{"event":"deep","to":{"users":["u"]},"data":{"a":${'['.repeat(50_000)}${']'.repeat(50_000)}}}`,
    );
    expectRegistryAnswer(arrays, 'VALIDATION_FAILED');
    // The gateway is unharmed: an ordinary publish still goes through.
    expect((await publish(deepPublish(3))).status).toBe(202);
    expect(gw.logs()).not.toContain('Maximum call stack size exceeded');
  });

  it('accepts a document exactly 64 levels deep and refuses 65', async () => {
    expect((await publish(deepPublish(63))).status).toBe(202);
    const over = await publish(deepPublish(64));
    expectRegistryAnswer(over, 'VALIDATION_FAILED');
    expect((over.body as { message: string }).message).toContain('64');
  });

  it('applies to every JSON body, and a bracket inside a string does not count', async () => {
    const login = await gw.http('POST', '/auth/login', undefined, { 'content-type': 'application/json' });
    expect(login.status).toBe(400);
    const deepLogin = await fetch(gw.url + '/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"email":"a@example.com","password":"secret-password","x":${nested(100)}}`,
    });
    expectRegistryAnswer({ status: deepLogin.status, body: await deepLogin.json() }, 'VALIDATION_FAILED');
    const brackets = await publish(
      JSON.stringify({ event: 'brackets', to: { users: ['u'] }, data: { text: '{['.repeat(500) + '"\\' } }),
    );
    expect(brackets.status).toBe(202);
  });

  it('checks the API key before looking at the body', async () => {
    const res = await publish(deepPublish(100_000), { authorization: 'Bearer not-the-key' });
    expectRegistryAnswer(res, 'API_KEY_INVALID');
  });

  it('never reports a RangeError inside a publish as retryable', async () => {
    // An app's own route publishing data built in-process (no HTTP parser, no depth check on the way):
    // the event log's encoding overflows the stack.
    const app = await startGateway(
      {},
      {
        routes: (fastify, gateway) => {
          fastify.post('/app/publish-deep', async () => {
            const root: Record<string, unknown> = {};
            let at = root;
            for (let i = 0; i < 200_000; i++) {
              const next: Record<string, unknown> = {};
              at.a = next;
              at = next;
            }
            return gateway.publish({ event: 'deep', data: root, to: { users: ['nobody'] } });
          });
        },
      },
    );
    try {
      const res = await app.http('POST', '/app/publish-deep');
      expect(res.status).toBeLessThan(500);
      expect(ERRORS[res.body.code as ErrorCode].retryable).toBe(false);
    } finally {
      await app.close();
    }
  });
});

describe('router and framework errors answer with registry bodies', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.close());

  /** A GET with the API key, another key, or (null) none. */
  const get = (path: string, key: string | null = gw.apiKey) =>
    exchange(
      gw.port,
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${key === null ? '' : `Authorization: Bearer ${key}\r\n`}Connection: close\r\n\r\n`,
    );

  it('lets ids up to the route limit (200 characters) reach the route', async () => {
    for (const length of [101, 200]) expectRegistryAnswer(await get(`/v1/users/${'u'.repeat(length)}`), 'NOT_FOUND');
    expect((await get(`/v1/users/${'u'.repeat(150)}`)).body.message).toBe('No such user');
    // Percent-encoded, a 200-character id is longer on the wire than it is.
    expectRegistryAnswer(await get(`/v1/users/${'%C3%A9'.repeat(200)}`), 'NOT_FOUND');
    expectRegistryAnswer(await get(`/v1/users/${'u'.repeat(201)}`), 'VALIDATION_FAILED');
    const presence = await get(`/v1/presence/users/${'u'.repeat(150)}`);
    expect(presence.status).toBe(200);
    expect(presence.body).toEqual({ online: false, connections: [] });
  });

  it('answers an over-long path parameter and a bad percent-encoding with VALIDATION_FAILED', async () => {
    expectRegistryAnswer(await get(`/v1/users/${'u'.repeat(5000)}`), 'VALIDATION_FAILED');
    expectRegistryAnswer(await get('/v1/users/%E0%A4%A'), 'VALIDATION_FAILED');
    expectRegistryAnswer(await get('/v1/users/%zz'), 'VALIDATION_FAILED');
  });

  it('answers an unauthenticated /v1 request with API_KEY_INVALID before any route or router check', async () => {
    for (const path of [
      `/v1/users/${'u'.repeat(5000)}`,
      '/v1/users/%E0%A4%A',
      `/v1/users/${'u'.repeat(201)}`,
      '/v1/nope',
    ]) {
      expectRegistryAnswer(await get(path, null), 'API_KEY_INVALID');
      expectRegistryAnswer(await get(path, 'wrong-key-wrong-key'), 'API_KEY_INVALID');
    }
  });

  it('maps body errors: media type, size, bad JSON, empty JSON, prototype poisoning', async () => {
    const post = (body: string, contentType: string) =>
      exchange(
        gw.port,
        `POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${contentType}\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    expectRegistryAnswer(await post('<x/>', 'application/xml'), 'VALIDATION_FAILED');
    expectRegistryAnswer(await post('{"a":', 'application/json'), 'VALIDATION_FAILED');
    expectRegistryAnswer(await post('', 'application/json'), 'VALIDATION_FAILED');
    expectRegistryAnswer(await post('{"__proto__":{"admin":true}}', 'application/json'), 'VALIDATION_FAILED');
    expectRegistryAnswer(
      await post('{"constructor":{"prototype":{"admin":true}}}', 'application/json'),
      'VALIDATION_FAILED',
    );
    expectRegistryAnswer(await post(`{"x":"${'a'.repeat(1024 * 1024 + 10)}"}`, 'application/json'), 'FRAME_TOO_LARGE');
  });

  it("answers node's own refusals (oversized head, malformed request, unknown Expect) with registry bodies", async () => {
    const big = await exchange(
      gw.port,
      `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${'c'.repeat(20_000)}\r\n\r\n`,
    );
    expectRegistryAnswer(big, 'HEADERS_TOO_LARGE');
    expect(ERRORS.HEADERS_TOO_LARGE.retryable).toBe(false);
    expectRegistryAnswer(
      await exchange(gw.port, 'GET /healthz HTTP/1.1\r\nBad Header: x\r\n\r\n'),
      'VALIDATION_FAILED',
    );
    expectRegistryAnswer(await exchange(gw.port, 'NOT A REQUEST\r\n\r\n'), 'VALIDATION_FAILED');
    expectRegistryAnswer(
      await exchange(
        gw.port,
        'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 200-ok\r\nConnection: close\r\n\r\n',
      ),
      'VALIDATION_FAILED',
    );
  });

  it('answers unknown routes and methods with NOT_FOUND, every error carrying a registry code', async () => {
    const answers = [
      await get('/nope'),
      await exchange(gw.port, 'DELETE /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'),
      await exchange(gw.port, 'PUT /v1/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'),
    ];
    expectRegistryAnswer(answers[0]!, 'NOT_FOUND');
    expectRegistryAnswer(answers[1]!, 'NOT_FOUND');
    expectRegistryAnswer(answers[2]!, 'API_KEY_INVALID');
    for (const answer of answers) {
      expect(isErrorCode(answer.body.code)).toBe(true);
      expect(answer.headers['content-type']).toMatch(/^application\/json/);
    }
  });
});

describe('slow requests (HTTP_REQUEST_TIMEOUT_MS)', () => {
  const TIMEOUT_MS = 1000;
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({
      HTTP_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS),
      PING_INTERVAL_MS: String(TIMEOUT_MS * 2.5),
      PING_TIMEOUT_MS: String(TIMEOUT_MS * 5),
    });
  });
  afterAll(() => gw.close());

  it('cuts 100 connections sending a body a byte at a time, serving an honest client meanwhile', async () => {
    const slow = Array.from({ length: 100 }, () => new SlowRequest(gw.port, 'body', 200));
    try {
      await Promise.all(slow.map((s) => s.started));
      const started = Date.now();
      // Served while the slow ones are open.
      expect((await gw.http('GET', '/healthz')).status).toBe(200);
      const login = await gw.http('POST', '/auth/login', { email: 'nobody@example.com', password: 'wrong-password' });
      expectRegistryAnswer(login, 'INVALID_CREDENTIALS');

      const outcomes = await Promise.all(slow.map((s) => s.outcome()));
      for (const { answer, at } of outcomes) {
        // Generous: the check runs on an interval, on a loaded machine.
        expect(at - started).toBeLessThan(TIMEOUT_MS + WAIT_MS);
        if (answer !== undefined) expectRegistryAnswer(answer, 'REQUEST_TIMEOUT');
      }
      expect(outcomes.filter((o) => o.answer !== undefined).length).toBeGreaterThan(0);
      expect(ERRORS.REQUEST_TIMEOUT.retryable).toBe(true);
    } finally {
      for (const s of slow) s.destroy();
    }
  }, 60_000);

  it('cuts connections whose head never ends', async () => {
    const slow = Array.from({ length: 10 }, () => new SlowRequest(gw.port, 'head', 200));
    try {
      await Promise.all(slow.map((s) => s.started));
      const started = Date.now();
      const outcomes = await Promise.all(slow.map((s) => s.outcome()));
      for (const { answer, at } of outcomes) {
        expect(at - started).toBeLessThan(TIMEOUT_MS + WAIT_MS);
        if (answer !== undefined) expectRegistryAnswer(answer, 'REQUEST_TIMEOUT');
      }
    } finally {
      for (const s of slow) s.destroy();
    }
  }, 60_000);

  it('closes connections that never send a byte', async () => {
    const started = Date.now();
    const silent = Array.from({ length: 10 }, () => {
      const socket = connect(gw.port, '127.0.0.1');
      let received = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
      socket.on('error', () => undefined);
      return new Promise<{ answer: RawAnswer | undefined; at: number }>((resolve) =>
        socket.on('close', () => resolve({ answer: parseAnswer(received), at: Date.now() })),
      );
    });
    for (const { answer, at } of await Promise.all(silent)) {
      expect(at - started).toBeLessThan(TIMEOUT_MS + WAIT_MS);
      if (answer !== undefined) expectRegistryAnswer(answer, 'REQUEST_TIMEOUT');
    }
  }, 60_000);

  it('keeps a WebSocket and a Socket.IO long-polling session open across several request timeouts', async () => {
    const token = gw.sign({ sub: 'long-lived' }, 600);
    const ws = new WsClient(gw.url, { headers: { authorization: `Bearer ${token}` } });
    const poll = new SioClient(gw.url, { auth: { token }, transports: ['polling'] });
    try {
      await ws.first('session_created');
      await poll.session();
      // Each engine.io poll is held up to PING_INTERVAL_MS (2.5 × the request timeout) before its ping.
      let pings = 0;
      const pokes = new Set<() => void>();
      poll.socket.io.on('ping', () => {
        pings += 1;
        for (const p of [...pokes]) p();
      });
      await waitUntil(
        'three engine.io pings',
        () => (pings >= 3 ? true : undefined),
        (poke) => {
          pokes.add(poke);
          return () => pokes.delete(poke);
        },
        TIMEOUT_MS * 2.5 * 3 + WAIT_MS,
      );
      expect(poll.socket.connected).toBe(true);
      expect(poll.disconnectReason).toBeUndefined();
      expect(ws.closeInfo).toBeUndefined();
      expect(poll.socket.io.engine.transport.name).toBe('polling');

      await gw.api('POST', '/v1/publish', { event: 'still_here', data: { n: 1 }, to: { users: ['long-lived'] } });
      await ws.next((f) => f.type === 'event' && f.event === 'still_here');
      await poll.next((e) => e.event === 'still_here');
    } finally {
      ws.close();
      poll.close();
    }
  }, 60_000);
});

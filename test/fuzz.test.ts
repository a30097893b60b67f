import { ERRORS, type ErrorCode } from '@tether/protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { TestGateway } from './helpers/gateway.js';
import {
  FuzzSio,
  FuzzWs,
  HonestClients,
  isRegistryCode,
  REGISTRY_CLOSE_CODES,
  SevereLogs,
  startFuzzGateway,
  Uncaught,
} from './helpers/fuzz-harness.js';
import {
  batchOf,
  httpInput,
  mutated,
  SIO_ACKED_EVENTS,
  sioInput,
  wsInput,
  type HttpInput,
  type SioInput,
  type WsInput,
} from './helpers/fuzz-inputs.js';
import { WAIT_MS } from './helpers/realtime.js';

/**
 * Property-based fuzzing of every surface a client can reach: `/ws` frames (authenticated, and as a
 * first frame), Socket.IO events and raw packets, HTTP bodies to `/v1/*` and `/auth/*`. For every
 * input: a coded answer (a registry code) or a clean close with a registry close code, never a 5xx;
 * after every batch: no error-level log line, no uncaught error, `/healthz` answers, and two honest
 * clients (one per transport), connected throughout, receive a marker published to them.
 *
 * Fixed seed and counts, so CI runs the same inputs every time (`FUZZ_SEED=<n>` explores others).
 * Inputs are batched per connection to keep the run short.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20_240_917);
const WS = { runs: 100, batch: 50 };
const WS_FIRST = { runs: 40, batch: 10 };
const SIO = { runs: 80, batch: 40 };
const HTTP = { runs: 80, batch: 25 };
const MIN_TOTAL = 10_000;
const PROPERTY_TIMEOUT_MS = 180_000;

/** Socket.IO's parser refuses these event names from a client (a protocol error: it closes the connection). */
const SIO_RESERVED = new Set([
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'newListener',
  'removeListener',
]);
/** Socket.IO packets at most this long never hit `maxHttpBufferSize` (= MAX_FRAME_BYTES, 64 KiB). */
const SIO_SAFE_PACKET_CHARS = 60_000;

const counts = { wsFrames: 0, wsFirstFrames: 0, sioInputs: 0, httpRequests: 0 };

describe('fuzz: hostile input on every surface gets a coded answer and hurts no one else', () => {
  const severe = new SevereLogs();
  const uncaught = new Uncaught();
  const violations: string[] = [];
  let gw: TestGateway;
  let honest: HonestClients;

  beforeAll(async () => {
    uncaught.start();
    gw = await startFuzzGateway(severe);
    honest = await HonestClients.connect(gw);
  });
  afterAll(async () => {
    uncaught.stop();
    honest?.close();
    await gw?.close();
    const total = counts.wsFrames + counts.wsFirstFrames + counts.sioInputs + counts.httpRequests;
    console.log(`fuzz (seed ${SEED}): ${JSON.stringify(counts)}, total ${total}`);
  });

  /** After every batch: nothing broke, nothing was logged as an error, honest clients still served. */
  async function healthy(what: string): Promise<void> {
    expect(violations, what).toEqual([]);
    expect(severe.lines, `${what}: error-level log lines`).toEqual([]);
    expect(uncaught.errors.map(String), `${what}: uncaught errors`).toEqual([]);
    expect((await gw.http('GET', '/healthz')).status).toBe(200);
    await honest.check();
  }

  const params = (runs: number): fc.Parameters<unknown> => ({ seed: SEED, numRuns: runs, endOnFailure: true });

  it(
    '/ws frames: bytes, any JSON, near-valid frames — one coded answer each, the connection kept',
    async () => {
      const token = gw.sign({ sub: 'fuzz-ws', channels: ['*'], scopes: ['ke'] });
      let conn: FuzzWs | undefined;
      let expected = 0;
      await fc.assert(
        fc.asyncProperty(batchOf(wsInput(token), WS.batch), async (inputs) => {
          if (conn?.closed !== undefined) conn = undefined;
          if (conn === undefined) {
            conn = await FuzzWs.open(gw.url, token, violations);
            expected = 0;
          }
          if (conn.answers !== expected) violations.push(`${conn.answers} answers to ${expected} frames`);
          for (const input of inputs) {
            if (conn.closed !== undefined) break;
            sendWs(conn.ws, input);
            expected++;
            counts.wsFrames++;
          }
          await conn.answered(expected);
          await healthy('/ws frames');
        }),
        params(WS.runs),
      );
      conn?.ws.close(1000);
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    '/ws first frames: session_created, a coded error, or auth_error and its registry close code',
    async () => {
      const token = gw.sign({ sub: 'fuzz-first' });
      const firstFrame = fc.oneof(
        mutated([
          { type: 'authenticate', token, position: '1-0', channels: ['c:1', 'c:2'], narrow: ['ke'] },
          { type: 'authenticate', token: 'a.b.c' },
        ]).map((f): WsInput => ({ kind: 'text', text: JSON.stringify(f) })),
        wsInput(token),
      );
      await fc.assert(
        fc.asyncProperty(batchOf(firstFrame, WS_FIRST.batch), async (inputs) => {
          await Promise.all(inputs.map((input) => firstFrameOutcome(gw.url, input, violations)));
          counts.wsFirstFrames += inputs.length;
          await healthy('/ws first frames');
        }),
        params(WS_FIRST.runs),
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'Socket.IO events and raw packets: coded acks; a protocol error closes only the sender',
    async () => {
      const token = gw.sign({ sub: 'fuzz-sio', channels: ['*'], scopes: ['ke'] });
      let conn: FuzzSio | undefined;
      await fc.assert(
        fc.asyncProperty(batchOf(sioInput(token), SIO.batch), async (inputs) => {
          if (conn?.connected === false) conn = undefined;
          conn ??= await FuzzSio.open(gw.url, token);
          const safe = inputs.filter(isWellFormedEvent);
          const unsafe = inputs.filter((i) => !isWellFormedEvent(i));
          // Well-formed events first: each known one answered with a coded ack, the connection kept.
          const expected: Array<[number, SioInput]> = [];
          for (const input of safe) {
            const id =
              input.kind === 'event'
                ? conn.event(input.name, input.args, input.ack)
                : input.kind === 'encoded'
                  ? conn.encodedEvent(input.name, input.payload, input.ack)
                  : undefined;
            if (id !== undefined && input.kind !== 'raw' && isAckedEvent(input.name)) expected.push([id, input]);
          }
          const probe = conn.event('subscribe', [{ channel: 'probe:1' }], true)!;
          await conn.acked([...expected.map(([id]) => id), probe]);
          if (!conn.connected) violations.push(`well-formed events disconnected the socket: ${conn.disconnectReason}`);
          for (const [id, input] of expected) checkAck(conn.acks.get(id), input, violations);
          // Then what Socket.IO itself may refuse (reserved names, malformed packets): at worst the
          // sender's connection is closed.
          for (const input of unsafe) {
            if (!conn.connected) break;
            if (input.kind === 'raw') conn.raw(input.packet);
            else if (input.kind === 'event') conn.event(input.name, input.args, input.ack);
          }
          if (conn.connected) await conn.acked([conn.event('subscribe', [{ channel: 'probe:2' }], true)!]);
          counts.sioInputs += inputs.length;
          await healthy('Socket.IO');
        }),
        params(SIO.runs),
      );
      conn?.close();
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'HTTP bodies to /v1/* and /auth/*: never a 5xx, every refusal coded',
    async () => {
      await fc.assert(
        fc.asyncProperty(batchOf(httpInput, HTTP.batch), async (inputs) => {
          await Promise.all(inputs.map((input) => httpOutcome(gw, input, violations)));
          counts.httpRequests += inputs.length;
          await healthy('HTTP');
        }),
        params(HTTP.runs),
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(`ran at least ${MIN_TOTAL} generated inputs across the surfaces`, () => {
    const total = counts.wsFrames + counts.wsFirstFrames + counts.sioInputs + counts.httpRequests;
    expect(total).toBeGreaterThanOrEqual(MIN_TOTAL);
  });
});

function sendWs(ws: WebSocket, input: WsInput): void {
  if (input.kind === 'binary') ws.send(input.bytes, { binary: true });
  else ws.send(input.text);
}

/** One unauthenticated `/ws` connection, one first frame, one of the allowed outcomes. */
async function firstFrameOutcome(url: string, input: WsInput, violations: string[]): Promise<void> {
  const ws = new WebSocket(url.replace(/^http/, 'ws') + '/ws');
  const outcome = await new Promise<string>((resolve) => {
    let first: { type: string; code?: ErrorCode } | undefined;
    const timer = setTimeout(() => resolve(`no answer to ${describeWs(input)}`), WAIT_MS);
    const done = (verdict: string): void => {
      clearTimeout(timer);
      resolve(verdict);
    };
    ws.on('open', () => sendWs(ws, input));
    ws.on('error', () => undefined);
    ws.on('message', (data) => {
      if (first !== undefined) return;
      first = JSON.parse(data.toString()) as { type: string; code?: ErrorCode };
      if (first.type === 'session_created') return done('ok');
      if (first.type === 'error') return done(isRegistryCode(first.code) ? 'ok' : `uncoded ${data.toString()}`);
      if (first.type !== 'auth_error' || !isRegistryCode(first.code)) done(`unexpected ${data.toString()}`);
    });
    ws.on('close', (code) => {
      if (first?.type === 'auth_error' && first.code !== undefined)
        return done(code === ERRORS[first.code].closeCode ? 'ok' : `auth_error ${first.code} closed ${code}`);
      done(REGISTRY_CLOSE_CODES.has(code) ? 'ok' : `closed ${code} after ${describeWs(input)}`);
    });
  });
  ws.terminate();
  if (outcome !== 'ok') violations.push(outcome);
}

function describeWs(input: WsInput): string {
  return input.kind === 'binary' ? `${input.bytes.length} binary bytes` : JSON.stringify(input.text.slice(0, 300));
}

function isAckedEvent(name: unknown): boolean {
  return (SIO_ACKED_EVENTS as readonly unknown[]).includes(name);
}

/** An event Socket.IO's own parser accepts: any string but its reserved names, or a number, not too long. */
function isWellFormedEvent(input: SioInput): boolean {
  if (input.kind === 'encoded') return input.payload.length <= SIO_SAFE_PACKET_CHARS;
  if (input.kind !== 'event') return false;
  if (typeof input.name === 'string' ? SIO_RESERVED.has(input.name) : typeof input.name !== 'number') return false;
  return JSON.stringify([input.name, ...input.args]).length <= SIO_SAFE_PACKET_CHARS;
}

function checkAck(args: unknown[] | undefined, input: SioInput, violations: string[]): void {
  const ack = args?.[0] as { ok?: unknown; code?: unknown } | undefined;
  const shown = JSON.stringify(input).slice(0, 300);
  if (typeof ack !== 'object' || ack === null || typeof ack.ok !== 'boolean')
    violations.push(`ack ${JSON.stringify(args)} to ${shown}`);
  else if (!ack.ok && !isRegistryCode(ack.code)) violations.push(`uncoded ack ${JSON.stringify(ack)} to ${shown}`);
}

async function httpOutcome(gw: TestGateway, input: HttpInput, violations: string[]): Promise<void> {
  const headers: Record<string, string> = {};
  if (input.contentType !== undefined) headers['content-type'] = input.contentType;
  if (input.apiKey !== 'none') headers.authorization = `Bearer ${input.apiKey === 'right' ? gw.apiKey : 'nope'}`;
  const res = await fetch(gw.url + input.path, { method: input.method, headers, body: input.body });
  const text = await res.text();
  const shown = `${input.method} ${input.path} ${input.contentType ?? '-'} ${JSON.stringify(input.body?.slice(0, 300))}`;
  if (res.status >= 500) return void violations.push(`${res.status} ${text.slice(0, 300)} for ${shown}`);
  if (res.status < 400) return;
  let body: { code?: unknown; message?: unknown } | undefined;
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // checked below
  }
  if (!isRegistryCode(body?.code) || typeof body?.message !== 'string')
    violations.push(`uncoded ${res.status} ${text.slice(0, 300)} for ${shown}`);
}

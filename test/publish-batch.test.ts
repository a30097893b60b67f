import type { PublishBatchItem } from '@tether/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, ensureBuilt, TestCluster, type GatewayProcess } from './helpers/cluster.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { SioClient, WsClient } from './helpers/realtime.js';
import { REDIS_BACKENDS } from './helpers/redis-cluster.js';

const BATCH = 1000;

/** `n` events to one user, with the caller's own ids so the order can be checked on arrival. */
function batchFor(user: string, n: number, tag: string) {
  return Array.from({ length: n }, (_, i) => ({
    id: `${tag}-${i}`,
    event: 'row',
    data: { i },
    to: { users: [user] },
  }));
}

/** The `i` of each `row` event a /ws client received, in arrival order. */
const rowsOf = (ws: WsClient): number[] =>
  ws.frames.filter((f) => f.type === 'event' && f.event === 'row').map((f) => (f.data as { i: number }).i);

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/**
 * Batch publish: many events in one request (or one in-process call), validated whole, applied in
 * order, each with its own id and answer.
 */
describe('batch publish on one node', () => {
  let gw: TestGateway;
  const open: { close(): void }[] = [];

  beforeAll(async () => {
    gw = await startGateway({ JWT_EXPIRATION_SECONDS: '600' });
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await gw?.close();
  });

  async function wsFor(user: string): Promise<WsClient> {
    const ws = new WsClient(gw.url, { headers: { authorization: `Bearer ${gw.sign({ sub: user })}` } });
    open.push(ws);
    await ws.first('session_created');
    return ws;
  }

  it('1,000 events in one request: each answered with its id, delivered in order, recoverable in order', async () => {
    const ws = await wsFor('batch-user');
    const answer = await gw.api('POST', '/v1/publish', batchFor('batch-user', BATCH, 'a'));
    expect(answer.status).toBe(202);
    const { results } = answer.body as { results: PublishBatchItem[] };
    expect(results).toEqual(range(BATCH).map((i) => ({ id: `a-${i}`, delivered: 1 })));

    await ws.nth('event', BATCH - 1);
    expect(rowsOf(ws)).toEqual(range(BATCH));
    const events = ws.frames.filter((f) => f.type === 'event');
    expect(events.map((f) => f.id)).toEqual(range(BATCH).map((i) => `a-${i}`));

    // The log holds them in the same order, one entry each: a client that was away replays them so.
    const history = await gw.internals.log.read('u:batch-user', { epoch: '', offset: 0 }, 2 * BATCH);
    expect(history.entries.map((e) => e.envelope.id)).toEqual(range(BATCH).map((i) => `a-${i}`));
  });

  it('an in-process batch (gateway.publishBatch) to Socket.IO clients arrives in order', async () => {
    const sio = new SioClient(gw.url, { auth: { token: gw.sign({ sub: 'inproc-user' }) } });
    open.push(sio);
    await sio.session();
    const { results } = await gw.gateway.publishBatch(batchFor('inproc-user', 200, 'p'));
    expect(results.every((r) => 'delivered' in r && r.delivered === 1)).toBe(true);
    await sio.next((e) => e.event === 'row' && (e.args[0] as { i: number }).i === 199);
    expect(sio.all<{ i: number }>('row').map((d) => d.i)).toEqual(range(200));
  });

  it('one invalid event refuses the whole batch with its index; nothing of it is published', async () => {
    const ws = await wsFor('strict-user');
    const events: unknown[] = batchFor('strict-user', 5, 'bad');
    events[3] = { event: 'row', data: { i: 3 }, to: { users: 'strict-user' } };
    const refused = await gw.api('POST', '/v1/publish', events);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining('[3]') });

    // A marker published after: the first event the client sees. Nothing of the refused batch came before it.
    await gw.api('POST', '/v1/publish', { event: 'marker', to: { users: ['strict-user'] } });
    const firstEvent = await ws.first('event');
    expect(firstEvent.event).toBe('marker');
  });

  it('limits: empty, over 1,000 events, an id given twice, a non-object item', async () => {
    const cases: [unknown, string][] = [
      [[], '1–1000 events'],
      [batchFor('u', BATCH + 1, 'big'), '1–1000 events'],
      [
        [...batchFor('u', 2, 'dup'), { id: 'dup-0', event: 'row', to: { users: ['u'] } }],
        '[2] id "dup-0" is given twice',
      ],
      [[...batchFor('u', 1, 'x'), 'text'], '[1] body must be an object'],
    ];
    for (const [body, message] of cases) {
      const answer = await gw.api('POST', '/v1/publish', body);
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining(message) });
    }
    await expect(gw.gateway.publishBatch([])).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('a batch resent with the same ids is not delivered twice from the log', async () => {
    const batch = batchFor('retry-user', 3, 'r');
    expect((await gw.api('POST', '/v1/publish', batch)).status).toBe(202);
    expect((await gw.api('POST', '/v1/publish', batch)).status).toBe(202);
    // The second request appended nothing: the user's stream holds each event once.
    const history = await gw.internals.log.read('u:retry-user', { epoch: '', offset: 0 }, 100);
    expect(history.entries.map((e) => e.envelope.id)).toEqual(['r-0', 'r-1', 'r-2']);
  });
});

describe.each(REDIS_BACKENDS)('batch publish in cluster mode ($name)', (backend) => {
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let cluster: TestCluster;
  let a: GatewayProcess, b: GatewayProcess;

  beforeAll(async () => {
    ensureBuilt();
    db = await createDatabase();
    cluster = new TestCluster({ databaseUrl: db.url, ...backend.env });
    [a, b] = [await cluster.start(), await cluster.start()];
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
    await db?.drop();
  }, 60_000);

  it('1,000 events sent to one node reach a client on the other in order, each answered', async () => {
    const ws = new WsClient(b.url, { headers: { authorization: `Bearer ${cluster.token('cluster-batch')}` } });
    await ws.first('session_created');
    try {
      const answer = await cluster.api(a, 'POST', '/v1/publish', batchFor('cluster-batch', BATCH, 'c'));
      expect(answer.status).toBe(202);
      const { results } = answer.body as { results: PublishBatchItem[] };
      expect(results.map((r) => r.id)).toEqual(range(BATCH).map((i) => `c-${i}`));
      expect(results.every((r) => !('error' in r))).toBe(true);
      await ws.nth('event', BATCH - 1, 30_000);
      expect(rowsOf(ws)).toEqual(range(BATCH));
    } finally {
      ws.close();
    }
  }, 60_000);

  it('scope events in a batch keep their order in every stream they go to', async () => {
    const ws = new WsClient(b.url, {
      headers: { authorization: `Bearer ${cluster.token('officer', { scopes: ['ke/nyeri'] })}` },
    });
    await ws.first('session_created');
    try {
      const events = range(300).map((i) => ({
        event: 'row',
        data: { i },
        to: { scopes: [i % 2 === 0 ? 'ke/nyeri' : `ke/nyeri/ward-${i % 7}`] },
      }));
      expect((await cluster.api(a, 'POST', '/v1/publish', events)).status).toBe(202);
      await ws.nth('event', 299, 30_000);
      expect(rowsOf(ws)).toEqual(range(300));
    } finally {
      ws.close();
    }
  }, 60_000);
});

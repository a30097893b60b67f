// Batch publish figure (docs/performance.md): the same events sent to POST /v1/publish one per request
// (`inFlight` requests at a time, keep-alive) and as arrays of `batchSize` (one request at a time, so
// the batches stay in order), on one gateway (embedded store) and on three over Redis (127.0.0.1:6379;
// events sent to the first node, clients spread over all three).
//
// Each event goes to one of `users` users, each connected once over /ws, so deliveries = events.
// deliveries/s = events ÷ (first request sent → last event received), measured in this process.
// The bench process, the gateways and Redis share the machine's cores.
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { WebSocket } from 'ws';
import { nowMicros } from './histogram.mjs';
import { ServerProcess } from './processes.mjs';
import { createTokenSigner } from './tokens.mjs';
import { dropRedisKeys, round, until } from './util.mjs';

const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

export const PUBLISH_BATCH_SIZES = {
  quick: { users: 100, events: 20_000, batchSize: 1000, inFlight: 16 },
  full: { users: 500, events: 100_000, batchSize: 1000, inFlight: 32 },
};

const SETUPS = [
  { name: 'one node', nodes: 1, redis: false },
  { name: 'three nodes', nodes: 3, redis: true },
];

/** `users` /ws clients spread over `ports`; counts `row` events and checks each user's arrive in order. */
async function openClients(ports, users, sign) {
  const state = { delivered: 0, outOfOrder: 0, last: new Map() };
  const sockets = await Promise.all(
    Array.from({ length: users }, (_, i) => {
      const ws = new WebSocket(`ws://127.0.0.1:${ports[i % ports.length]}/ws`, {
        headers: { authorization: `Bearer ${sign(`pb${i}`, [])}` },
      });
      return new Promise((resolve, reject) => {
        ws.on('error', reject);
        ws.on('message', (raw) => {
          const frame = JSON.parse(raw.toString());
          if (frame.type === 'session_created') resolve(ws);
          else if (frame.type === 'event' && frame.event === 'row') {
            state.delivered++;
            const previous = state.last.get(i) ?? -1;
            if (frame.data.n <= previous) state.outOfOrder++;
            state.last.set(i, frame.data.n);
          }
        });
      });
    }),
  );
  return { state, close: () => sockets.forEach((ws) => ws.terminate()) };
}

const eventAt = (n, users) => ({ event: 'row', data: { n }, to: { users: [`pb${n % users}`] } });

async function post(url, apiKey, body) {
  const res = await fetch(`${url}/v1/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify(body),
  });
  if (res.status !== 202) throw new Error(`publish answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  await res.arrayBuffer();
}

/** One request per event, `inFlight` at a time. Order across users is not kept; per user it is not either. */
async function sendSingles(url, apiKey, from, count, { users, inFlight }) {
  let next = from;
  const end = from + count;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < end) await post(url, apiKey, eventAt(next++, users));
    }),
  );
}

/** Arrays of `batchSize`, one request at a time: every user's events arrive in order. */
async function sendBatches(url, apiKey, from, count, { users, batchSize }) {
  for (let start = from; start < from + count; start += batchSize) {
    const n = Math.min(batchSize, from + count - start);
    await post(
      url,
      apiKey,
      Array.from({ length: n }, (_, k) => eventAt(start + k, users)),
    );
  }
}

async function measure(mode, send, state, count) {
  state.delivered = 0;
  state.outOfOrder = 0;
  state.last.clear();
  const load0 = loadavg()[0];
  const started = nowMicros();
  await send();
  await until(`every ${mode} event delivered`, () => state.delivered >= count, 300_000);
  const seconds = (nowMicros() - started) / 1e6;
  return {
    events: count,
    seconds: round(seconds, 2),
    deliveriesPerSecond: round(count / seconds),
    outOfOrder: state.outOfOrder,
    loadAverageAtStart: round(load0, 1),
  };
}

async function runSetup(setup, sizes, { ctx, log, tetherEnv, cli, profileDir }) {
  const prefix = `bpb${randomBytes(5).toString('hex')}`;
  const servers = [];
  let clients;
  try {
    const env = tetherEnv(setup.redis ? { REDIS_URL, REDIS_PREFIX: prefix } : {});
    const ports = [];
    for (let k = 1; k <= setup.nodes; k++) {
      const server = new ServerProcess(`batch-node${k}`, cli, ['serve'], env, { profileDir, readyFrom: 'log' });
      servers.push(server);
      ports.push(await server.ready);
    }
    const url = `http://127.0.0.1:${ports[0]}`;
    clients = await openClients(ports, sizes.users, createTokenSigner(ctx.secret));
    const { state } = clients;

    // Warm-up: both paths run once.
    const warm = Math.min(2000, sizes.events / 10);
    await measure('warm-up', () => sendSingles(url, ctx.apiKey, 0, warm, sizes), state, warm);
    await measure('warm-up', () => sendBatches(url, ctx.apiKey, 0, warm, sizes), state, warm);

    const single = await measure(
      'single',
      () => sendSingles(url, ctx.apiKey, 0, sizes.events, sizes),
      state,
      sizes.events,
    );
    const batch = await measure(
      'batch',
      () => sendBatches(url, ctx.apiKey, 0, sizes.events, sizes),
      state,
      sizes.events,
    );
    const ratio = round(batch.deliveriesPerSecond / single.deliveriesPerSecond, 2);
    log(
      `  ${setup.name}: single ${single.deliveriesPerSecond} deliveries/s (${sizes.inFlight} in flight), ` +
        `batches of ${sizes.batchSize} ${batch.deliveriesPerSecond} deliveries/s (${ratio}×), ` +
        `batch events out of order per user: ${batch.outOfOrder}`,
    );
    return { setup: setup.name, nodes: setup.nodes, redis: setup.redis, single, batch, ratio };
  } finally {
    clients?.close();
    await Promise.all(servers.map((s) => s.stop()));
    if (setup.redis) await dropRedisKeys(REDIS_URL, prefix).catch(() => undefined);
  }
}

/** Runs each setup in turn; a setup that fails (no Redis) is reported with its error. */
export async function runPublishBatch({ quick, ctx, log, tetherEnv, cli, profileDir }) {
  const sizes = quick ? PUBLISH_BATCH_SIZES.quick : PUBLISH_BATCH_SIZES.full;
  const setups = [];
  for (const setup of SETUPS) {
    try {
      setups.push(await runSetup(setup, sizes, { ctx, log, tetherEnv, cli, profileDir }));
    } catch (err) {
      log(`  ${setup.name}: error: ${err.message.split('\n')[0]}`);
      setups.push({ setup: setup.name, error: err.message.split('\n')[0] });
    }
  }
  return { sizes, setups };
}

/** Markdown lines for the report. */
export function publishBatchLines(result) {
  if (!result?.setups) return [];
  const s = result.sizes;
  const lines = [
    '',
    `Batch publish (POST /v1/publish → /ws clients; ${s.events.toLocaleString('en-US')} events to ${s.users} users; ` +
      `single requests ${s.inFlight} in flight against arrays of ${s.batchSize}, one at a time):`,
  ];
  for (const r of result.setups) {
    if (r.error) {
      lines.push(`- ${r.setup}: failed: ${r.error}`);
      continue;
    }
    lines.push(
      `- ${r.setup}${r.redis ? ' (Redis)' : ''}: single ${r.single.deliveriesPerSecond.toLocaleString('en-US')} deliveries/s, ` +
        `batch ${r.batch.deliveriesPerSecond.toLocaleString('en-US')} deliveries/s (${r.ratio}×); ` +
        `batch events out of order per user: ${r.batch.outOfOrder}`,
    );
  }
  return lines;
}

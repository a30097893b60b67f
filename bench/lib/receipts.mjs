// Receipt cost figure (docs/performance.md): what recording deliveries and taking the clients' delivery
// receipts costs the gateway. One gateway on the embedded store (SQLite, a fresh DATA_DIR each run),
// started once per run in one of two cases, alternated off, on, off, on … (`rounds` each) so drift on
// the machine shows in the rounds rather than in the ratio:
//   off  DELIVERY_RECORD=off, clients send no receipts;
//   on   DELIVERY_RECORD=users (the default), each /ws client sends receipts batched like the SDK
//        (packages/client/src/receipts.ts): one `{"type":"receipt","ids":[…]}` frame per 100 ms window,
//        or at once when 256 ids are waiting.
//
// `users` users each hold `devicesPerUser` /ws connections. Events addressed to one user each
// (`to: {users:[u]}`, so deliveries = events × devicesPerUser) are POSTed to /v1/publish at a steady
// `rate` (request j is due at start + j × perRequest ÷ rate; `inFlight` requests at most, keep-alive),
// one event per request or arrays of `perRequest`. Each event's data carries its send time
// (CLOCK_MONOTONIC µs of this process); the receiving client records publish→receive latency per delivery.
// After a warm-up at the same rate, the measured window runs from the first request to the last
// delivery plus `settleMs` (so the receipts of the last events and the recorder's 200 ms flush are
// inside it, and the same idle time is in the off case). Server CPU = the gateway's own
// process.cpuUsage() (user + system, all threads; bench/lib/probe.mjs) over that window ÷ deliveries.
// In the on case the rows of tether_deliveries are counted at the end (the record's SQLite file, tether-record.db, opened read-only
// after the gateway stopped and flushed): addressed (events), live and ack (events × devices each).
// The bench process (publisher and clients), the gateway and anything else running share the cores.
import { join } from 'node:path';
import http from 'node:http';
import { loadavg } from 'node:os';
import Database from 'better-sqlite3';
import { WebSocket } from 'ws';
import { createHistogram, nowMicros, summarize } from './histogram.mjs';
import { ServerProcess } from './processes.mjs';
import { machineTicks, post as postPublish } from './publish-load.mjs';
import { createTokenSigner } from './tokens.mjs';
import { round, sleep, until } from './util.mjs';

// Arrays of rate ÷ 100 events, one request per 10 ms: one event per request spends most of the gateway's
// CPU on HTTP (≈145 µs per delivery against ≈72 µs with arrays, quick sizes) and fell short of 2,000/s in
// the on case on the 2-core machine, while arrays held the rate; `perRequest: 1` measures singles.
export const RECEIPTS_SIZES = {
  quick: {
    users: 200,
    devicesPerUser: 2,
    rate: 2000,
    seconds: 10,
    warmSeconds: 2,
    perRequest: 20,
    inFlight: 8,
    rounds: 2,
    settleMs: 500,
  },
  full: {
    users: 1000,
    devicesPerUser: 2,
    rate: 4000,
    seconds: 20,
    warmSeconds: 3,
    perRequest: 40,
    inFlight: 8,
    rounds: 2,
    settleMs: 500,
  },
};

/** The SDK's receipt batching: one frame per window, or at once at 256 ids. */
const RECEIPT_WINDOW_MS = 100;
const MAX_RECEIPT_IDS = 256;
const EVENT = 'rc';
/** A run whose publisher reached less than this share of the target rate is flagged. */
const RATE_TOLERANCE = 0.95;

const median = (xs) => {
  const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (s.length === 0) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** `users × devicesPerUser` /ws clients; each records latency and, with `receipts`, batches receipts. */
async function openClients(port, sizes, sign, receipts) {
  const state = { delivered: 0, receiptFrames: 0, receiptIds: 0, histogram: createHistogram() };
  const sockets = [];
  const batchers = [];
  const connect = (u, d) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      headers: { authorization: `Bearer ${sign(`rc${u}`, [], 3600, d)}` },
    });
    const batch = { ids: [], timer: undefined };
    const flush = () => {
      if (batch.timer !== undefined) clearTimeout(batch.timer);
      batch.timer = undefined;
      while (batch.ids.length > 0) {
        const ids = batch.ids.splice(0, MAX_RECEIPT_IDS);
        if (ws.readyState !== WebSocket.OPEN) return;
        ws.send(JSON.stringify({ type: 'receipt', ids }));
        state.receiptFrames++;
        state.receiptIds += ids.length;
      }
    };
    batchers.push(batch);
    return new Promise((resolve, reject) => {
      ws.on('error', reject);
      ws.on('message', (raw) => {
        const frame = JSON.parse(raw.toString());
        if (frame.type === 'event' && frame.event === EVENT) {
          state.delivered++;
          state.histogram.recordValue(Math.max(1, nowMicros() - frame.data.t));
          if (receipts) {
            batch.ids.push(frame.id);
            if (batch.ids.length >= MAX_RECEIPT_IDS) flush();
            else batch.timer ??= setTimeout(flush, RECEIPT_WINDOW_MS);
          }
        } else if (frame.type === 'session_created') resolve(ws);
        else if (frame.type === 'error') state.lastError = frame;
      });
    });
  };
  // A window of connects at a time, so the handshakes do not all land at once.
  const pairs = [];
  for (let u = 0; u < sizes.users; u++) for (let d = 0; d < sizes.devicesPerUser; d++) pairs.push([u, d]);
  for (let i = 0; i < pairs.length; i += 64) {
    sockets.push(...(await Promise.all(pairs.slice(i, i + 64).map(([u, d]) => connect(u, d)))));
  }
  return {
    state,
    reset() {
      state.delivered = 0;
      state.receiptFrames = 0;
      state.receiptIds = 0;
      state.histogram = createHistogram();
    },
    close() {
      for (const b of batchers) if (b.timer !== undefined) clearTimeout(b.timer);
      for (const ws of sockets) ws.terminate();
    },
  };
}

/** One POST /v1/publish that must be accepted (202). */
async function post(port, agent, apiKey, body) {
  const status = await postPublish(port, agent, apiKey, body);
  if (status !== 202) throw new Error(`publish answered ${status}`);
}

/**
 * `count` events at `rate`/s: request j (events j·perRequest …) is due at start + j·perRequest/rate;
 * at most `inFlight` requests are outstanding, so a slow gateway shows as a lower achieved rate.
 * Each event's data carries the time its request was built.
 */
async function publishAtRate(port, agent, apiKey, count, from, sizes) {
  const { rate, perRequest, inFlight, users } = sizes;
  const requests = Math.ceil(count / perRequest);
  const started = nowMicros();
  let next = 0;
  const event = (n, t) => ({ event: EVENT, data: { n, t }, to: { users: [`rc${n % users}`] } });
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < requests) {
        const j = next++;
        const ahead = (started + (j * perRequest * 1e6) / rate - nowMicros()) / 1000;
        if (ahead >= 1) await sleep(ahead);
        const first = from + j * perRequest;
        const n = Math.min(perRequest, from + count - first);
        const t = nowMicros();
        const body = perRequest === 1 ? event(first, t) : Array.from({ length: n }, (_, k) => event(first + k, t));
        await post(port, agent, apiKey, JSON.stringify(body));
      }
    }),
  );
  return (nowMicros() - started) / 1e6;
}

/** tether_deliveries rows by kind (the gateway has stopped, so every buffered row was written). */
function countDeliveryRows(dataDir) {
  const db = new Database(join(dataDir, 'tether-record.db'), { readonly: true, fileMustExist: true });
  try {
    const byKind = { addressed: 0, live: 0, ack: 0, acknowledged: 0 };
    let stored = 0;
    // One stored row may be a `group` of an event's addressed and delivery rows (packages/server/src/receipts/delivery-store.ts).
    for (const row of db.prepare('SELECT kind, detail, acked_at FROM tether_deliveries').iterate()) {
      stored++;
      const rows =
        row.kind === 'group'
          ? JSON.parse(row.detail).map(([, , , kind, , , , ackedAt]) => ({ kind, acked_at: ackedAt }))
          : [row];
      for (const r of rows) {
        byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
        // A receipt that came while its delivery row was held is on that row (acked_at), else an ack row.
        if (r.kind === 'ack' || (r.kind === 'live' && r.acked_at !== null)) byKind.acknowledged++;
      }
    }
    return { total: stored, byKind };
  } finally {
    db.close();
  }
}

async function runOnce(mode, round_, sizes, { ctx, tetherEnv, cli, profileDir }) {
  const on = mode === 'on';
  const env = tetherEnv({ DELIVERY_RECORD: on ? 'users' : 'off' });
  const server = new ServerProcess(`receipts-${mode}${round_}`, cli, ['serve'], env, {
    profileDir,
    readyFrom: 'log',
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: sizes.inFlight });
  let clients;
  let result;
  try {
    const port = await server.ready;
    clients = await openClients(port, sizes, createTokenSigner(ctx.secret), on);
    const { state } = clients;
    const devices = sizes.devicesPerUser;

    // Warm-up at the same rate: JIT, SQLite, the recorder's buffers.
    const warm = Math.round(sizes.rate * sizes.warmSeconds);
    await publishAtRate(port, agent, ctx.apiKey, warm, 0, sizes);
    await until('every warm-up event delivered', () => state.delivered >= warm * devices, 120_000);
    await sleep(sizes.settleMs);
    clients.reset();

    const events = Math.round(sizes.rate * sizes.seconds);
    const load0 = loadavg()[0];
    const m0 = machineTicks();
    const l0 = process.cpuUsage();
    const s0 = await server.stats();
    const started = nowMicros();
    const publishSeconds = await publishAtRate(port, agent, ctx.apiKey, events, warm, sizes);
    await until('every event delivered', () => state.delivered >= events * devices, 120_000, 5);
    const deliverSeconds = (nowMicros() - started) / 1e6;
    await sleep(sizes.settleMs);
    const s1 = await server.stats();
    const loadgenMicros = Object.values(process.cpuUsage(l0)).reduce((a, b) => a + b, 0);
    const m1 = machineTicks();
    const windowSeconds = (s1.at - s0.at) / 1e6;
    const deliveries = state.delivered;
    const serverMicros = s1.cpuMicros - s0.cpuMicros;
    const latency = summarize(state.histogram);
    result = {
      mode,
      round: round_,
      events,
      deliveries,
      publishRate: round(events / publishSeconds),
      rateShort: events / publishSeconds < sizes.rate * RATE_TOLERANCE,
      deliveriesPerSecond: round(deliveries / deliverSeconds),
      serverCpuMicrosPerDelivery: round(serverMicros / deliveries, 2),
      serverCpuPercent: round((serverMicros / 1e6 / windowSeconds) * 100, 1),
      benchCpuPercent: round((loadgenMicros / 1e6 / windowSeconds) * 100, 1),
      machineBusyPercent: m0 && m1 ? round(((m1.busy - m0.busy) / Math.max(1, m1.total - m0.total)) * 100, 1) : null,
      latencyMs: latency,
      receiptFrames: state.receiptFrames,
      receiptIds: state.receiptIds,
      loadAverageAtStart: round(load0, 2),
      rows: null,
      expectedRows: null,
    };
    if (on) {
      const total = warm + events;
      result.expectedRows = { addressed: total, live: total * devices, acknowledged: total * devices };
    }
  } finally {
    clients?.close();
    agent.destroy();
    await server.stop();
  }
  if (on) result.rows = countDeliveryRows(env.DATA_DIR);
  return result;
}

function describe(r) {
  const rows = r.rows
    ? `; tether_deliveries ${r.rows.total.toLocaleString('en-US')} stored rows (` +
      ['addressed', 'live', 'ack', 'acknowledged']
        .map((k) => `${k} ${(r.rows.byKind[k] ?? 0).toLocaleString('en-US')}`)
        .join(', ') +
      `; expected addressed / live / acknowledged ${r.expectedRows.addressed} / ${r.expectedRows.live} / ${r.expectedRows.acknowledged})`
    : '';
  return (
    `${r.mode} #${r.round}: ${r.deliveriesPerSecond} deliveries/s (publish ${r.publishRate}/s` +
    `${r.rateShort ? ', SHORT of target' : ''}), server ${r.serverCpuMicrosPerDelivery} µs CPU/delivery ` +
    `(${r.serverCpuPercent}% of a core), p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, ` +
    `max ${r.latencyMs.max} ms; bench ${r.benchCpuPercent}%, machine ${r.machineBusyPercent}% busy, ` +
    `load ${r.loadAverageAtStart}` +
    (r.mode === 'on'
      ? `; ${r.receiptFrames} receipt frames (${round(r.receiptIds / Math.max(1, r.receiptFrames), 1)} ids each)`
      : '') +
    rows
  );
}

/** Runs off, on, off, on … (`rounds` of each), then the medians and the on/off ratios. */
export async function runReceipts({ quick, ctx, log, tetherEnv, cli, profileDir, overrides = {} }) {
  const sizes = { ...(quick ? RECEIPTS_SIZES.quick : RECEIPTS_SIZES.full), ...overrides };
  log(
    `  ${sizes.users} users × ${sizes.devicesPerUser} /ws devices, ${sizes.rate} user-addressed events/s for ` +
      `${sizes.seconds} s (${sizes.perRequest === 1 ? 'one event per request' : `arrays of ${sizes.perRequest}`}, ` +
      `${sizes.inFlight} in flight), ${sizes.rounds} rounds of off/on`,
  );
  const runs = [];
  try {
    for (let r = 1; r <= sizes.rounds; r++) {
      for (const mode of ['off', 'on']) {
        const run = await runOnce(mode, r, sizes, { ctx, log, tetherEnv, cli, profileDir });
        log(`  ${describe(run)}`);
        runs.push(run);
      }
    }
  } catch (err) {
    log(`  error: ${err.message.split('\n')[0]}`);
    return { sizes, runs, error: err.message.split('\n')[0] };
  }
  const summary = {};
  for (const mode of ['off', 'on']) {
    const of = runs.filter((r) => r.mode === mode);
    summary[mode] = {
      deliveriesPerSecond: round(median(of.map((r) => r.deliveriesPerSecond))),
      serverCpuMicrosPerDelivery: round(median(of.map((r) => r.serverCpuMicrosPerDelivery)), 2),
      p50: round(median(of.map((r) => r.latencyMs.p50)), 2),
      p99: round(median(of.map((r) => r.latencyMs.p99)), 2),
    };
  }
  const cpuRatio = round(summary.on.serverCpuMicrosPerDelivery / summary.off.serverCpuMicrosPerDelivery, 3);
  const p99Ratio = round(summary.on.p99 / summary.off.p99, 2);
  const rowsOk = runs
    .filter((r) => r.mode === 'on')
    .every((r) => ['addressed', 'live', 'acknowledged'].every((k) => (r.rows?.byKind[k] ?? 0) === r.expectedRows[k]));
  const result = {
    sizes,
    runs,
    summary,
    cpuRatio,
    p99Ratio,
    goal: 1.1,
    goalMet: cpuRatio !== null ? cpuRatio <= 1.1 : null,
    rowsComplete: rowsOk,
    rateShort: runs.some((r) => r.rateShort),
  };
  log(
    `  median off: ${summary.off.serverCpuMicrosPerDelivery} µs/delivery, p99 ${summary.off.p99} ms; ` +
      `on: ${summary.on.serverCpuMicrosPerDelivery} µs/delivery, p99 ${summary.on.p99} ms → ` +
      `CPU per delivery ${cpuRatio}×, p99 ${p99Ratio}×; goal ≤ 1.10× CPU per delivery: ${result.goalMet ? 'met' : 'missed'}` +
      `; delivery rows complete: ${rowsOk ? 'yes' : 'no'}`,
  );
  return result;
}

/** Markdown lines for the report. */
export function receiptsLines(result) {
  if (!result?.sizes) return [];
  const s = result.sizes;
  const lines = [
    '',
    `Receipt cost (one gateway, embedded store; ${s.users} users × ${s.devicesPerUser} /ws devices; ` +
      `${s.rate.toLocaleString('en-US')} user-addressed events/s over POST /v1/publish for ${s.seconds} s, ` +
      `${s.perRequest === 1 ? 'one event per request' : `arrays of ${s.perRequest}`}; ` +
      `off = DELIVERY_RECORD=off, no receipts; on = DELIVERY_RECORD=users, receipts batched per 100 ms / 256 ids; ` +
      `runs alternate off, on, …):`,
  ];
  for (const r of result.runs ?? []) lines.push(`- ${describe(r)}`);
  if (result.error) {
    lines.push(`- failed: ${result.error}`);
    return lines;
  }
  const { off, on } = result.summary;
  lines.push(
    `- median: off ${off.deliveriesPerSecond.toLocaleString('en-US')} deliveries/s, ${off.serverCpuMicrosPerDelivery} µs CPU/delivery, ` +
      `p50 ${off.p50} ms, p99 ${off.p99} ms; on ${on.deliveriesPerSecond.toLocaleString('en-US')} deliveries/s, ` +
      `${on.serverCpuMicrosPerDelivery} µs CPU/delivery, p50 ${on.p50} ms, p99 ${on.p99} ms`,
    `- on/off: CPU per delivery ${result.cpuRatio}×, p99 ${result.p99Ratio}×; goal ≤ 1.10× CPU per delivery: ` +
      `${result.goalMet ? 'met' : 'missed'}; delivery record complete in every on run: ${result.rowsComplete ? 'yes' : 'no'}` +
      (result.rateShort ? '; the publisher fell short of the target rate in at least one run' : ''),
  );
  return lines;
}

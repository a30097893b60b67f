// Outbox figure (docs/outbox.md): rows an app commits to <DATABASE_SCHEMA>.outbox, as delivered to
// clients, on one gateway (no Redis) and on three (Redis at 127.0.0.1:6379). Both keep Tether's store
// and the outbox in one fresh PostgreSQL database (DATABASE_URL = PG_OUTBOX_URL), as an app would.
//
//   burst  `writers` connections insert `burstRows` rows as fast as they can, in transactions of
//          `rowsPerTx`: rows/s = rows ÷ (first INSERT → last delivery), the consumer's throughput
//          with a backlog; its insert→delivery latency is mostly time queued behind that backlog
//   paced  one connection inserts single-row transactions at `pacedRate`/s for `pacedMs`: the
//          insert→delivery latency when the consumer keeps up (wake-up on NOTIFY, publish, delivery)
//
// Each row goes to one of `users` users, each connected once over /ws, spread over the gateways
// (on three nodes, two thirds of the rows cross nodes through Redis). Latency is measured in this
// process, from just before the row's INSERT is sent to the event's arrival (`nowMicros`, one clock).
// The bench process, the gateways, PostgreSQL and Redis share the machine's cores.
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import pg from 'pg';
import { WebSocket } from 'ws';
import { createHistogram, nowMicros, summarize } from './histogram.mjs';
import { ServerProcess } from './processes.mjs';
import { createTokenSigner } from './tokens.mjs';
import { dropRedisKeys, round, sleep, until } from './util.mjs';

const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

export const OUTBOX_SIZES = {
  quick: { users: 40, writers: 4, rowsPerTx: 10, burstRows: 4000, pacedRate: 200, pacedMs: 4000 },
  full: { users: 200, writers: 4, rowsPerTx: 10, burstRows: 40000, pacedRate: 500, pacedMs: 20000 },
};

const SETUPS = [
  { name: 'one node', nodes: 1, redis: false },
  { name: 'three nodes', nodes: 3, redis: true },
];

async function withAdmin(fn) {
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

/** `users` /ws clients spread over `ports`; every `row` event's insert→delivery goes into `state.histogram`. */
async function openClients(ports, users, sign) {
  const state = { delivered: 0, histogram: createHistogram() };
  const sockets = await Promise.all(
    Array.from({ length: users }, (_, i) => {
      const ws = new WebSocket(`ws://127.0.0.1:${ports[i % ports.length]}/ws`, {
        headers: { authorization: `Bearer ${sign(`ob${i}`, [])}` },
      });
      return new Promise((resolve, reject) => {
        ws.on('error', reject);
        ws.on('message', (raw) => {
          const frame = JSON.parse(raw.toString());
          if (frame.type === 'session_created') resolve(ws);
          else if (frame.type === 'event' && frame.event === 'row') {
            state.delivered++;
            state.histogram.recordValue(Math.max(1, nowMicros() - frame.data.t));
          }
        });
      });
    }),
  );
  return { state, close: () => sockets.forEach((ws) => ws.terminate()) };
}

/** Inserts `rows` rows from `writers` connections in transactions of `rowsPerTx`; returns when committed. */
async function burst(url, { writers, rowsPerTx, users }, rows) {
  const perWriter = Math.ceil(rows / writers);
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const sql = new pg.Client({ connectionString: url });
      await sql.connect();
      for (let done = 0; done < perWriter;) {
        await sql.query('BEGIN');
        for (let r = 0; r < rowsPerTx && done < perWriter; r++, done++) {
          const user = `ob${(w * perWriter + done) % users}`;
          await sql.query('SELECT tether.publish($1, $2::jsonb, $3::jsonb)', [
            'row',
            JSON.stringify({ t: nowMicros() }),
            JSON.stringify({ users: [user] }),
          ]);
        }
        await sql.query('COMMIT');
      }
      await sql.end();
    }),
  );
  return perWriter * writers;
}

/** Single-row transactions at `rate`/s for `ms`; returns how many rows were inserted. */
async function paced(url, { pacedRate, pacedMs, users }) {
  const sql = new pg.Client({ connectionString: url });
  await sql.connect();
  const started = Date.now();
  let sent = 0;
  while (Date.now() - started < pacedMs) {
    const due = Math.floor(((Date.now() - started) / 1000) * pacedRate);
    while (sent < due) {
      await sql.query('SELECT tether.publish($1, $2::jsonb, $3::jsonb)', [
        'row',
        JSON.stringify({ t: nowMicros() }),
        JSON.stringify({ users: [`ob${sent % users}`] }),
      ]);
      sent++;
    }
    await sleep(2);
  }
  await sql.end();
  return sent;
}

async function runSetup(setup, sizes, { ctx, log, tetherEnv, cli, profileDir }) {
  const tag = randomBytes(5).toString('hex');
  const dbName = `tether_bench_outbox_${tag}`;
  await withAdmin((admin) => admin.query(`CREATE DATABASE ${dbName}`));
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${dbName}`;
  const dbUrl = url.toString();
  const prefix = `bob${tag}`;
  const servers = [];
  let clients;
  try {
    const env = tetherEnv({
      DATABASE_URL: dbUrl,
      PG_OUTBOX_URL: dbUrl,
      ...(setup.redis ? { REDIS_URL: REDIS_URL, REDIS_PREFIX: prefix } : {}),
    });
    const ports = [];
    // One after the other: the first creates the tables.
    for (let k = 1; k <= setup.nodes; k++) {
      const server = new ServerProcess(`outbox-node${k}`, cli, ['serve'], env, { profileDir, readyFrom: 'log' });
      servers.push(server);
      ports.push(await server.ready);
      await until('the outbox table', () => outboxExists(dbUrl));
    }
    clients = await openClients(ports, sizes.users, createTokenSigner(ctx.secret));
    const { state } = clients;

    // Warm-up: the consumer is elected and every path has run once.
    await paced(dbUrl, { ...sizes, pacedRate: 100, pacedMs: 500 });
    await until('the warm-up rows', async () => (await outboxSize(dbUrl)) === 0);
    await sleep(200);

    state.delivered = 0;
    state.histogram = createHistogram();
    const load0 = loadavg()[0];
    const started = nowMicros();
    const rows = await burst(dbUrl, sizes, sizes.burstRows);
    await until('every burst row delivered', () => state.delivered >= rows, 300_000);
    const seconds = (nowMicros() - started) / 1e6;
    const burstFigures = {
      rows,
      seconds: round(seconds, 2),
      rowsPerSecond: round(rows / seconds),
      latency: summarize(state.histogram),
    };
    log(
      `  ${setup.name}: burst ${rows} rows → ${burstFigures.rowsPerSecond} rows/s, p50/p99 ${burstFigures.latency.p50}/${burstFigures.latency.p99} ms`,
    );

    state.delivered = 0;
    state.histogram = createHistogram();
    const sent = await paced(dbUrl, sizes);
    await until('every paced row delivered', () => state.delivered >= sent, 60_000);
    const pacedFigures = { rows: sent, rate: sizes.pacedRate, latency: summarize(state.histogram) };
    log(
      `  ${setup.name}: paced ${sizes.pacedRate}/s → p50/p99 ${pacedFigures.latency.p50}/${pacedFigures.latency.p99} ms`,
    );
    return {
      setup: setup.name,
      nodes: setup.nodes,
      redis: setup.redis,
      loadAverageAtStart: round(load0, 1),
      loadAverageAtEnd: round(loadavg()[0], 1),
      burst: burstFigures,
      paced: pacedFigures,
    };
  } finally {
    clients?.close();
    await Promise.all(servers.map((s) => s.stop()));
    await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)).catch(() => undefined);
    if (setup.redis) await dropRedisKeys(REDIS_URL, prefix).catch(() => undefined);
  }
}

async function outboxExists(dbUrl) {
  const sql = new pg.Client({ connectionString: dbUrl });
  await sql.connect();
  try {
    const { rows } = await sql.query(`SELECT to_regclass('tether.outbox') IS NOT NULL AS ok`);
    return rows[0].ok;
  } finally {
    await sql.end();
  }
}

async function outboxSize(dbUrl) {
  const sql = new pg.Client({ connectionString: dbUrl });
  await sql.connect();
  try {
    return (await sql.query('SELECT count(*)::int AS n FROM tether.outbox')).rows[0].n;
  } finally {
    await sql.end();
  }
}

/**
 * Runs each setup in turn; a setup that fails (no PostgreSQL, no Redis) is reported with its error.
 * Returns `{ sizes, setups: [...] }`.
 */
export async function runOutbox({ quick, ctx, log, tetherEnv, cli, profileDir }) {
  const sizes = quick ? OUTBOX_SIZES.quick : OUTBOX_SIZES.full;
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
export function outboxLines(outbox) {
  if (!outbox?.setups) return [];
  const s = outbox.sizes;
  const lines = [
    '',
    `Outbox (PG_OUTBOX_URL → /ws clients; ${s.users} users, ${s.writers} writers, transactions of ${s.rowsPerTx} rows):`,
  ];
  for (const r of outbox.setups) {
    if (r.error) {
      lines.push(`- ${r.setup}: failed: ${r.error}`);
      continue;
    }
    lines.push(
      `- ${r.setup}${r.redis ? ' (Redis)' : ''}: burst of ${r.burst.rows.toLocaleString('en-US')} rows ` +
        `${r.burst.rowsPerSecond.toLocaleString('en-US')} rows/s, insert→delivery p50/p99 ${r.burst.latency.p50}/${r.burst.latency.p99} ms; ` +
        `paced ${r.paced.rate}/s p50/p99 ${r.paced.latency.p50}/${r.paced.latency.p99} ms ` +
        `(load ${r.loadAverageAtStart} → ${r.loadAverageAtEnd})`,
    );
  }
  return lines;
}

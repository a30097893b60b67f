#!/usr/bin/env node
// Tether benchmark: `npm run bench` (full sizes) or `npm run bench -- --quick` (under 2 minutes).
// Starts each server under test (Tether over /ws and /socket.io, and the baselines), drives it from
// load-generator processes, and writes bench/results/<date>.json and .md. Options:
//   --quick                     small sizes
//   --targets=a,b               run only these (raw-ws, raw-ws-corked, sio-naive, sio-rooms, tether-ws, tether-sio,
//                               recovery, cluster-publish); `--targets=recovery` runs only the recovery section,
//                               `--targets=cluster-publish` only the cluster publish figure (bench/lib/cluster-publish.mjs:
//                               standalone Redis at 127.0.0.1:6379 vs the Redis Cluster at 127.0.0.1:7101-7103)
//   --client=socket.io-client   use socket.io-client instead of the lightweight Engine.IO client
//   --connections=N             override the connection count
//   --profile                   write a --cpu-prof profile of each server into bench/results/profiles/
//   --profile=phases            instead, one profile per server and phase (connect, fanout-one, fanout-groups, fanout-batch,
//                               reauth, reauth-storm), started and stopped through the probe (bench/lib/probe.mjs)
//   --heap-snapshot             after the idle connections' memory is measured, write a heap snapshot of each
//                               server into bench/results/profiles/ (read them with bench/heap-summary.mjs)
//   --no-cluster                skip the cluster figures
//   --no-recovery               skip the recovery figures (bench/lib/recovery.mjs)
//   --no-cluster-publish        skip the cluster publish figure
//   --no-outbox                 skip the outbox figure; `--targets=outbox` runs only it (bench/lib/outbox.mjs:
//                               PostgreSQL at 127.0.0.1:5432, Redis at 127.0.0.1:6379)
//   --no-publish-batch          skip the batch publish figure; `--targets=publish-batch` runs only it
//                               (bench/lib/publish-batch.mjs: single publishes against arrays of 1,000)
//   --no-receipts               skip the receipt cost figure; `--targets=receipts` runs only it
//                               (bench/lib/receipts.mjs: delivery record and receipts off against on)
//   --no-scaling                skip the scaling curve; `--targets=scaling` runs only it (tether-ws at
//                               2k/5k/10k/19k connections, quick: 1k/3k, the same recipients and publish rate;
//                               then raw-ws-corked at the smallest and largest size as a control)
import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureJwtVerify } from './lib/jwt-rate.mjs';
import { ServerProcess } from './lib/processes.mjs';
import { evaluate, evaluatePerformance, evaluateRecovery, markdown } from './lib/report.mjs';
import { runRecovery } from './lib/recovery.mjs';
import { runTarget } from './lib/scenarios.mjs';
import { runCluster } from './lib/cluster.mjs';
import { runClusterPublish } from './lib/cluster-publish.mjs';
import { outboxLines, runOutbox } from './lib/outbox.mjs';
import { publishBatchLines, runPublishBatch } from './lib/publish-batch.mjs';
import { receiptsLines, runReceipts } from './lib/receipts.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BENCH = join(ROOT, 'bench');
const TETHER_CLI = join(ROOT, 'packages/server/dist/cli.js');

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? true];
  }),
);
const quick = Boolean(args.quick);

const SIZES = quick
  ? {
      connections: 2000,
      recipients: 1000,
      groups: 100,
      workers: 2,
      connectWindow: 64,
      settleMs: 300,
      idleMs: 1500,
      fanoutEvents: 20,
      groupRounds: 5,
      reps: 3,
      latencyMs: 2000,
      reauthMs: 2000,
      reauthWindow: 256,
      batchSize: 50,
      lowRateMs: 3000,
    }
  : {
      connections: 19000,
      recipients: 10000,
      groups: 1000,
      workers: 4,
      connectWindow: 64,
      settleMs: 2000,
      idleMs: 15000,
      fanoutEvents: 50,
      groupRounds: 5,
      reps: 3,
      latencyMs: 10000,
      reauthMs: 10000,
      reauthWindow: 512,
      batchSize: 100,
      lowRateMs: 10000,
    };
if (args.connections) SIZES.connections = Number(args.connections);
SIZES.recipients = Math.min(SIZES.recipients, SIZES.connections);

const PING_INTERVAL_MS = 5000;
const SECRET = 'bench-secret-0123456789abcdefghijklmnopqrstuvwxyz';
const API_KEY = 'bench-api-key-0123456789';
const date = new Date().toISOString().replace(/:/g, '-').replace(/\..*/, '');
const RESULTS = join(BENCH, 'results');
const profileRoot = args.profile ? join(RESULTS, 'profiles', date) : undefined;
const phaseProfileDir = args.profile === 'phases' ? profileRoot : undefined;
const profileDir = phaseProfileDir ? undefined : profileRoot;
if (phaseProfileDir) mkdirSync(phaseProfileDir, { recursive: true });
const heapSnapshotDir = args['heap-snapshot'] ? join(RESULTS, 'profiles', date) : undefined;
if (heapSnapshotDir) mkdirSync(heapSnapshotDir, { recursive: true });
const dataDir = mkdtempSync(join(tmpdir(), 'tether-bench-'));
process.on('exit', () => rmSync(dataDir, { recursive: true, force: true }));

const log = (line) => console.log(line);
const baselineEnv = { API_KEYS: API_KEY, PING_INTERVAL_MS: String(PING_INTERVAL_MS) };

/** Environment of a Tether node under test: limits opened wide so the bench measures the path, not the limiters. */
export function tetherEnv(extra = {}) {
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    JWT_SECRET: SECRET,
    API_KEYS: API_KEY,
    LOG_LEVEL: 'warn',
    DATA_DIR: mkdtempSync(join(dataDir, 'node-')),
    CONNECT_RATE_PER_IP: '10000000',
    MAX_CONNECTIONS_PER_USER: '100000',
    INBOUND_RATE_PER_SECOND: '1000000',
    INBOUND_BURST: '1000000',
    REAUTH_RATE_PER_MINUTE: '100000',
    PING_INTERVAL_MS: String(PING_INTERVAL_MS),
    SHUTDOWN_GRACE_MS: '0',
    ...extra,
  };
}

const baseline =
  (name, script, env = {}) =>
  () =>
    new ServerProcess(name, join(BENCH, 'baselines', script), [], { ...baselineEnv, ...env }, { profileDir });
const tether = (name) => () =>
  new ServerProcess(name, TETHER_CLI, ['serve'], tetherEnv(), { profileDir, readyFrom: 'log' });

const TARGETS = [
  { name: 'raw-ws', protocol: 'ws', auth: 'query', start: baseline('raw-ws', 'raw-ws.mjs') },
  {
    name: 'raw-ws-corked',
    protocol: 'ws',
    auth: 'query',
    start: baseline('raw-ws-corked', 'raw-ws.mjs', { BENCH_CORK: '1' }),
  },
  { name: 'sio-naive', protocol: 'sio', auth: 'query', start: baseline('sio-naive', 'sio-naive.mjs') },
  { name: 'sio-rooms', protocol: 'sio', auth: 'query', start: baseline('sio-rooms', 'sio-rooms.mjs') },
  { name: 'tether-ws', protocol: 'ws', auth: 'token', reauth: true, tether: true, start: tether('tether-ws') },
  { name: 'tether-sio', protocol: 'sio', auth: 'token', reauth: true, tether: true, start: tether('tether-sio') },
];

/** Newest modification time of the TypeScript sources Tether's dist is built from. */
function newestSource() {
  let newest = 0;
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const pkg of ['protocol', 'server'])
    if (existsSync(join(ROOT, 'packages', pkg, 'src'))) walk(join(ROOT, 'packages', pkg, 'src'));
  return newest;
}

/**
 * Builds Tether's server (and the protocol package it references) when dist is missing or older than
 * the sources, so the bench never silently measures stale code. Only the server project is built: a
 * half-edited client or app must not stop the bench. Returns `{ error?, warning? }`.
 */
function ensureTetherBuilt() {
  if (existsSync(TETHER_CLI) && statSync(TETHER_CLI).mtimeMs >= newestSource()) return {};
  log('packages/server/dist is missing or stale: building it (tsc -b packages/server)');
  try {
    execSync('npx tsc -b packages/server', { cwd: ROOT, stdio: 'inherit', timeout: 300_000 });
  } catch (err) {
    const why = `build failed: ${err.message.split('\n')[0]}`;
    if (!existsSync(TETHER_CLI)) return { error: why };
    log(`  ${why}; measuring the existing dist, which may be stale`);
    return { warning: `${why}; the existing (possibly stale) dist was measured` };
  }
  return existsSync(TETHER_CLI) ? {} : { error: 'build produced no packages/server/dist/cli.js' };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * The scaling curve: tether-ws with the same recipients and scopes and more idle connections each
 * time; the latency runs all publish at 50% of the smallest size's median rate, so p99 compares at
 * one load. Each size is a fresh server.
 */
async function runScaling() {
  const counts = quick ? [1000, 3000] : [2000, 5000, 10000, 19000];
  const base = {
    ...SIZES,
    recipients: quick ? 500 : 1000,
    groups: quick ? 50 : 100,
    settleMs: 300,
    // One heartbeat interval: the idle CPU it measures is taken out of the CPU per delivery (net figure).
    idleMs: PING_INTERVAL_MS,
    // Bursts of 300 events (300,000 deliveries, ~1–2 s each at full size) after one unmeasured: with
    // 50-event bursts (~0.2 s) and the first of three runs cold, the median moved by ±25% between
    // runs of one code, more than the goal's margin.
    fanoutEvents: quick ? 100 : 300,
    fanoutWarmupReps: 1,
    reps: 3,
    latencyMs: quick ? 2000 : 5000,
  };
  const scaled = (name) => ({
    ...TARGETS.find((t) => t.name === name),
    reauth: false,
    skipLatency80: true,
    scalingOnly: true,
  });
  const errors = [];
  let rate;
  const curve = async (def, sizesToRun) => {
    const points = [];
    for (const connections of sizesToRun) {
      log(`  ${def.name}, ${connections} connections`);
      try {
        const r = await runTarget({ ...def, maxPublishRate: rate }, { ...base, connections }, benchContext(), (line) =>
          log(`  ${line}`),
        );
        rate ??= r.fanoutGroups.medianPublishesPerSecond;
        points.push(scalingPoint(connections, r));
      } catch (err) {
        log(`  error at ${connections}: ${err.message}`);
        errors.push(`${def.name}, ${connections} connections: ${err.message.split('\n')[0]}`);
      }
    }
    return points;
  };
  const points = await curve(scaled('tether-ws'), counts);
  // The control: the corked raw ws baseline at the smallest and the largest size, the same
  // recipients and rate. Whatever grows in its CPU per delivery too is the kernel's and the
  // machine's (more sockets, more memory), not Tether's; the goal is still read from Tether alone.
  const control = await curve(scaled('raw-ws-corked'), [counts[0], counts.at(-1)]);
  return {
    recipients: base.recipients,
    groups: base.groups,
    rate: points[0] ? Math.round(rate * 0.5) : null,
    points,
    control: { name: 'raw-ws-corked', points: control },
    errors,
  };
}

/** One size of the scaling curve from `runTarget`'s figures. */
function scalingPoint(connections, r) {
  return {
    connections,
    connectsPerSecond: r.connect.perSecond,
    serverCpuMicrosPerConnect: r.connect.serverCpuMicrosPerConnect,
    rssBytesPerConnection: r.memory?.rssBytesPerConnection,
    deliveriesPerSecond: r.fanoutOne.deliveriesPerSecond,
    // Medians of the runs: each run is short, and the best-throughput run is not the typical cost.
    serverCpuMicrosPerDelivery: median(r.fanoutOne.runs.map((x) => x.serverCpuMicrosPerDelivery)),
    serverCpuMicrosPerDeliveryRuns: r.fanoutOne.runs.map((x) => x.serverCpuMicrosPerDelivery),
    serverCpuMicrosPerDeliveryNetOfIdle: median(
      r.fanoutOne.runs.map((x) => x.serverCpuMicrosPerDeliveryNetOfIdle ?? x.serverCpuMicrosPerDelivery),
    ),
    idleCpuPercent: r.memory?.idleCpuPercent,
    serverCpuMicrosPerPublish: r.fanoutGroups.serverCpuMicrosPerPublish,
    p50: r.latency50.p50,
    p99: r.latency50.p99,
    rate: r.latency50.rate,
    loadAverageAtStart: r.loadAverageAtStart,
    loadAverageAtEnd: r.loadAverageAtEnd,
  };
}

const benchContext = () => ({
  secret: SECRET,
  apiKey: API_KEY,
  clientKind: args.client === 'socket.io-client' ? 'socket.io-client' : 'eio-over-ws',
  phaseProfileDir,
  heapSnapshotDir,
});

async function main() {
  const started = Date.now();
  const only = typeof args.targets === 'string' ? new Set(args.targets.split(',')) : null;
  const selected = TARGETS.filter((t) => !only || only.has(t.name));
  const ctx = benchContext();
  const withRecovery = !args['no-recovery'] && (!only || only.has('recovery'));
  const withClusterPublish = !args['no-cluster-publish'] && (!only || only.has('cluster-publish'));
  const withOutbox = !args['no-outbox'] && (!only || only.has('outbox'));
  const withPublishBatch = !args['no-publish-batch'] && (!only || only.has('publish-batch'));
  const withReceipts = !args['no-receipts'] && (!only || only.has('receipts'));
  const withScaling = !args['no-scaling'] && (!only || only.has('scaling'));
  const build =
    selected.some((t) => t.tether) ||
    withRecovery ||
    withClusterPublish ||
    withOutbox ||
    withPublishBatch ||
    withReceipts ||
    withScaling
      ? ensureTetherBuilt()
      : {};
  const buildError = build.error ?? null;

  log(
    `bench ${quick ? '--quick ' : ''}: ${SIZES.connections} connections, ${SIZES.workers} workers, targets ${[...selected.map((t) => t.name), ...(withRecovery ? ['recovery'] : []), ...(withClusterPublish ? ['cluster-publish'] : [])].join(', ')}`,
  );
  const jwt = await measureJwtVerify(SECRET, quick ? 500 : 2000);
  log(`HS256 verify/s: ${JSON.stringify(jwt)}`);

  const results = {};
  for (const def of selected) {
    log(`\n[${def.name}]`);
    if (def.tether && buildError) {
      results[def.name] = { name: def.name, error: buildError };
      continue;
    }
    try {
      results[def.name] = await runTarget(def, SIZES, ctx, log);
    } catch (err) {
      log(`  error: ${err.message}`);
      results[def.name] = { name: def.name, error: err.message.split('\n').slice(0, 3).join(' ') };
    }
  }

  let cluster = { note: 'skipped (--no-cluster)' };
  const tethers = selected.filter((t) => t.tether && results[t.name] && !results[t.name].error);
  if (!args['no-cluster'] && tethers.length) {
    log('\n[cluster]');
    cluster = await runCluster({ tethers, results, sizes: SIZES, ctx, log, tetherEnv, cli: TETHER_CLI, profileDir });
  } else if (!tethers.length) cluster = { note: 'not run (no Tether result)' };

  let scaling = { note: 'skipped' };
  if (withScaling) {
    log('\n[scaling]');
    scaling = buildError ? { note: `not run: ${buildError}` } : await runScaling();
  }

  let recovery = { note: 'skipped' };
  if (withRecovery) {
    log('\n[recovery]');
    recovery = buildError
      ? { error: buildError }
      : await runRecovery({ quick, ctx, log, tetherEnv, cli: TETHER_CLI, profileDir });
  }

  let clusterPublish = { note: 'skipped' };
  if (withClusterPublish) {
    log('\n[cluster-publish]');
    clusterPublish = buildError
      ? { error: buildError }
      : await runClusterPublish({ quick, ctx, log, tetherEnv, cli: TETHER_CLI, profileDir });
  }

  let outbox = { note: 'skipped' };
  if (withOutbox) {
    log('\n[outbox]');
    outbox = buildError
      ? { error: buildError }
      : await runOutbox({ quick, ctx, log, tetherEnv, cli: TETHER_CLI, profileDir });
  }

  let publishBatch = { note: 'skipped' };
  if (withPublishBatch) {
    log('\n[publish-batch]');
    publishBatch = buildError
      ? { error: buildError }
      : await runPublishBatch({ quick, ctx, log, tetherEnv, cli: TETHER_CLI, profileDir });
  }

  let receipts = { note: 'skipped' };
  if (withReceipts) {
    log('\n[receipts]');
    receipts = buildError
      ? { error: buildError }
      : await runReceipts({ quick, ctx, log, tetherEnv, cli: TETHER_CLI, profileDir });
  }

  const targets = {};
  for (const t of selected.filter((d) => d.tether)) targets[t.name] = evaluate(results, t.name, cluster);
  if (withRecovery) targets.recovery = evaluateRecovery(recovery);
  const performance = {};
  for (const t of selected.filter((d) => d.tether)) performance[t.name] = evaluatePerformance(results, t.name, scaling);
  const run = {
    date,
    quick,
    durationS: Math.round((Date.now() - started) / 1000),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? '?',
      memGB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    sizes: SIZES,
    clientKind: ctx.clientKind,
    pingIntervalMs: PING_INTERVAL_MS,
    buildWarning: build.warning ?? null,
    jwt,
    results,
    cluster,
    recovery,
    clusterPublish,
    outbox,
    publishBatch,
    receipts,
    scaling,
    targets,
    performance,
  };
  mkdirSync(RESULTS, { recursive: true });
  const base = join(RESULTS, `${date}${quick ? '-quick' : ''}`);
  writeFileSync(`${base}.json`, JSON.stringify(run, null, 2) + '\n');
  const lines = [...outboxLines(outbox), ...publishBatchLines(publishBatch), ...receiptsLines(receipts)];
  const md = markdown(run) + (lines.length > 0 ? `${lines.join('\n')}\n` : '');
  writeFileSync(`${base}.md`, md);
  log('\n' + md);
  log(`wrote ${base}.json and .md in ${run.durationS} s`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

// Cluster publish figure: what a `POST /v1/publish` costs in cluster mode on a standalone Redis and on
// a 3-master Redis Cluster, measured in the same run, and how the Redis work splits over the shards.
//
// For each backend (standalone Redis at 127.0.0.1:6379, then the Redis Cluster whose seeds are
// 127.0.0.1:7101–7103), `nodes` gateways start with a prefix of their own (REDIS_PREFIX, every key
// deleted afterwards) and a few idle `/ws` connections that read nothing the bench publishes (so
// the figure is the publish path: the log append and its interest-channel publish, no delivery).
// Then for each pattern, after a warm-up, `concurrency` requests are kept in flight over HTTP for
// `durationMs`, spread evenly over the gateways:
//
//   user   to one random user of 10,000                       1 stream per event   (u:<user>)
//   scope  to one random leaf of ke/r0–9/d0–9/w0–9            5 streams per event  (the leaf, its two
//                                                             ancestors, the top-level ke, and *)
//
// Figures: publishes accepted (202) per second, errors, latency per request (p50/p99), gateway CPU
// (each gateway's `process.cpuUsage()` through the probe) and Redis CPU (`INFO cpu` used_cpu_user +
// used_cpu_sys of each server: the standalone one, or each master) per publish, and per shard the
// split of Redis CPU, of script calls (`INFO commandstats`: EVAL/EVALSHA/FCALL) and of stream keys.
// Every scope event of the tree goes to `s:*` and `s:ke`: the shards owning `{<prefix>:s:*}`
// (`starShard`) and `{<prefix>:s:ke}` take one script per scope publish each, on top of their share of
// the other streams, and the busiest shard (`hottestShard`) bounds the scope publishes of the whole
// deployment at ≈ 1 s ÷ its Redis CPU per scope publish, however many shards there are.
//
// The load generator, the gateways and every Redis share the machine's cores, so publishes/s says
// little about how a cluster scales; CPU per publish and its split over the shards do. Other clients
// of the same Redis servers would inflate their CPU: the scripts counted beyond the bench's own are
// reported (`foreignScripts`), as is each server's CPU while the gateways sat idle.
import { cpus, loadavg } from 'node:os';
import { ServerProcess } from './processes.mjs';
import { drive, machineTicks, openIdle } from './publish-load.mjs';
import { RedisServers } from './redis-stats.mjs';
import { createTokenSigner } from './tokens.mjs';

export const CLUSTER_PUBLISH_SIZES = {
  quick: { nodes: 2, idlePerNode: 10, concurrency: 64, idleMs: 1000, warmupMs: 2000, durationMs: 5000 },
  full: { nodes: 2, idlePerNode: 50, concurrency: 256, idleMs: 3000, warmupMs: 5000, durationMs: 20000 },
};

const CLUSTER_SEEDS = ['127.0.0.1:7101', '127.0.0.1:7102', '127.0.0.1:7103'];
const BACKENDS = [
  {
    name: 'standalone',
    label: 'standalone Redis',
    cluster: false,
    seeds: ['127.0.0.1:6379'],
    // The other variable emptied (= unset): one inherited from the shell would stop start-up.
    env: { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '' },
  },
  {
    // The layout before HISTORY_SPREAD: `*` and `ke` one stream each, on one shard each.
    name: 'clusterUnspread',
    label: '3-master Redis Cluster, HISTORY_SPREAD=1',
    cluster: true,
    spread: 1,
    patterns: ['scope'],
    seeds: CLUSTER_SEEDS,
    env: { REDIS_CLUSTER_NODES: CLUSTER_SEEDS.join(','), REDIS_URL: '', HISTORY_SPREAD: '1' },
  },
  {
    name: 'cluster',
    label: '3-master Redis Cluster (HISTORY_SPREAD=8, its default)',
    cluster: true,
    spread: 8,
    seeds: CLUSTER_SEEDS,
    env: { REDIS_CLUSTER_NODES: CLUSTER_SEEDS.join(','), REDIS_URL: '', HISTORY_SPREAD: '' },
  },
];

const USERS = 10_000;
const rand = (n) => Math.floor(Math.random() * n);
export const PATTERNS = [
  { name: 'user', label: 'one random user of 10,000', streams: 1, to: () => ({ users: [`u${rand(USERS)}`] }) },
  {
    name: 'scope',
    label: 'one random leaf of ke/r0–9/d0–9/w0–9',
    streams: 5,
    to: () => ({ scopes: [`ke/r${rand(10)}/d${rand(10)}/w${rand(10)}`] }),
  },
];
// The streams every scope event of the tree goes to: `*` and `ke`, or their sub-streams when spread.
const hotStreams = (spread = 1) =>
  ['*', 'ke'].flatMap((scope) =>
    spread === 1 ? [`s:${scope}`] : Array.from({ length: spread }, (_, k) => `s:${scope}#${k}/${spread}`),
  );

const round = (v, digits = 0) =>
  v === null || !Number.isFinite(v) ? null : Math.round(v * 10 ** digits) / 10 ** digits;
const hundreds = (v) => (Number.isFinite(v) ? Math.round(v / 100) * 100 : null);
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

/** One pattern on one backend's gateways: warm-up, then the measured run with every CPU read around it. */
async function runPattern({ backend, pattern, ports, gateways, redis, sizes, ctx, prefix }) {
  await drive(ports, ctx.apiKey, pattern, sizes.concurrency, sizes.warmupMs);
  const [g0, r0] = await Promise.all([Promise.all(gateways.map((g) => g.stats(false))), redis.snapshot()]);
  const l0 = process.cpuUsage();
  const m0 = machineTicks();
  const run = await drive(ports, ctx.apiKey, pattern, sizes.concurrency, sizes.durationMs);
  const loadgenMicros = sum(Object.values(process.cpuUsage(l0)));
  const m1 = machineTicks();
  const [g1, r1] = await Promise.all([Promise.all(gateways.map((g) => g.stats(false))), redis.snapshot()]);
  const keys = await redis.keys(prefix);
  const shards = RedisServers.diff(r0, r1);
  const ok = Math.max(1, run.accepted);
  const wall = run.seconds * 1e6;
  const gatewayMicros = sum(g1.map((s, i) => s.cpuMicros - g0[i].cpuMicros));
  const redisMicros = sum(shards.map((s) => s.cpuMicros));
  const scripts = sum(shards.map((s) => s.scripts));
  const kind = pattern.name === 'user' ? 'u' : 's';
  const machine = m0 && m1 ? ((m1.busy - m0.busy) / Math.max(1, m1.total - m0.total)) * cpus().length * 100 : null;
  const ours = ((gatewayMicros + redisMicros + loadgenMicros) / wall) * 100;
  const f = {
    pattern: pattern.label,
    seconds: round(run.seconds, 2),
    accepted: run.accepted,
    publishesPerSecond: round(run.accepted / run.seconds),
    errors: run.errors,
    statuses: run.statuses,
    latency: run.latency,
    streamsPerPublish: round(sum(shards.map((s) => s.xadds)) / ok, 2),
    gatewayCpuMicrosPerPublish: round(gatewayMicros / ok, 1),
    redisCpuMicrosPerPublish: round(redisMicros / ok, 1),
    redisMainCpuMicrosPerPublish: round(sum(shards.map((s) => s.mainCpuMicros)) / ok, 1),
    // Wall-clock time inside the scripts (`INFO commandstats` usec): on a busy machine it includes
    // time Redis was descheduled mid-script, so it can exceed the CPU figures.
    scriptMicrosPerPublish: round(sum(shards.map((s) => s.scriptUsec)) / ok, 1),
    loadgenCpuMicrosPerPublish: round(loadgenMicros / ok, 1),
    // Percent of one core over the run, to see who had the machine's cores; `others` is every other
    // process on the machine (the machine's busy time less ours).
    cpuPercent: {
      gateways: round((gatewayMicros / wall) * 100),
      redis: round((redisMicros / wall) * 100),
      loadgen: round((loadgenMicros / wall) * 100),
      machine: round(machine),
      others: machine === null ? null : round(Math.max(0, machine - ours)),
    },
    scriptsPerPublish: round(scripts / ok, 2),
    // Scripts the bench did not cause (other clients of these servers): their CPU is in the figures.
    foreignScripts: scripts - run.accepted * (backend.cluster ? pattern.streams : 1),
    shards: shards.map((s, i) => ({
      node: s.node,
      cpuMicrosPerPublish: round(s.cpuMicros / ok, 1),
      mainCpuMicrosPerPublish: round(s.mainCpuMicros / ok, 1),
      cpuShare: round((s.cpuMicros / Math.max(1, redisMicros)) * 100, 1),
      cpuPercent: round((s.cpuMicros / wall) * 100, 1),
      scripts: s.scripts,
      scriptShare: round((s.scripts / Math.max(1, scripts)) * 100, 1),
      scriptMicrosPerCall: s.scripts ? round(s.scriptUsec / s.scripts, 1) : null,
      cpuMicrosPerScript: s.scripts ? round(s.mainCpuMicros / s.scripts, 1) : null,
      streamKeys: keys[i].streams[kind],
      holds: [],
    })),
  };
  if (pattern.name === 'scope') {
    for (const stream of hotStreams(backend.spread)) {
      const owner = await redis.ownerOf(`{${prefix}:${stream}}:x`);
      f.shards.find((s) => s.node === owner)?.holds.push(stream);
    }
    // A shard's main thread is what saturates (Redis runs commands and scripts on one thread), so
    // the deployment's scope publishes stop at 1 s ÷ the busiest shard's CPU per publish: in practice
    // the one owning `s:*` or the one owning `s:ke`, whichever also drew more of the other streams.
    const figures = (s) =>
      s && {
        node: s.node,
        holds: s.holds,
        cpuMicrosPerPublish: s.cpuMicrosPerPublish,
        mainCpuMicrosPerPublish: s.mainCpuMicrosPerPublish,
        cpuShare: s.cpuShare,
        scriptShare: s.scriptShare,
        ceilingPerSecond: hundreds(1e6 / s.mainCpuMicrosPerPublish),
        cpuMicrosPerScript: s.cpuMicrosPerScript,
        // A shard with one hot stream and nothing else: one script per scope publish at this cost.
        aloneCeilingPerSecond: s.cpuMicrosPerScript ? hundreds(1e6 / s.cpuMicrosPerScript) : null,
      };
    f.starShard = figures(f.shards.find((s) => s.holds.some((h) => h.startsWith('s:*'))));
    f.hottestShard = figures(
      f.shards.reduce((a, b) => (b.mainCpuMicrosPerPublish > a.mainCpuMicrosPerPublish ? b : a)),
    );
  }
  return f;
}

/** Both patterns on one backend, with its own gateways and prefix; always deletes the prefix's keys. */
async function runBackend(backend, { sizes, ctx, log, tetherEnv, cli, profileDir }) {
  const prefix = `bench-cp-${Date.now().toString(36)}-${backend.name}`;
  const out = { label: backend.label, prefix, gateways: sizes.nodes };
  let redis = null;
  const gateways = [];
  let idle = [];
  try {
    redis = await RedisServers.open(backend.seeds, backend.cluster);
    out.servers = redis.nodes;
    for (let k = 1; k <= sizes.nodes; k += 1)
      gateways.push(
        new ServerProcess(
          `cluster-publish-${backend.name}-node${k}`,
          cli,
          ['serve'],
          tetherEnv({ ...backend.env, REDIS_PREFIX: prefix }),
          { profileDir, readyFrom: 'log' },
        ),
      );
    const ports = await Promise.all(gateways.map((g) => g.ready));
    const sign = createTokenSigner(ctx.secret);
    idle = (await Promise.all(ports.map((port, k) => openIdle(port, sign, sizes.idlePerNode, k)))).flat();

    // What the servers do with the gateways connected and nothing published (cluster bus, heartbeats, others).
    const i0 = await redis.snapshot();
    await new Promise((r) => setTimeout(r, sizes.idleMs));
    out.idle = RedisServers.diff(i0, await redis.snapshot()).map((s) => ({
      node: s.node,
      cpuMillisPerSecond: round(s.cpuMicros / sizes.idleMs, 2),
      scriptsPerSecond: round((s.scripts / sizes.idleMs) * 1000, 1),
    }));

    out.patterns = {};
    for (const pattern of PATTERNS.filter((p) => backend.patterns?.includes(p.name) ?? true)) {
      const f = await runPattern({ backend, pattern, ports, gateways, redis, sizes, ctx, prefix });
      out.patterns[pattern.name] = f;
      log(
        `  ${backend.name} ${pattern.name}: ${f.publishesPerSecond.toLocaleString('en-US')} publishes/s, ${f.errors} errors, ` +
          `p50 ${f.latency.p50} / p99 ${f.latency.p99} ms; CPU per publish: gateway ${f.gatewayCpuMicrosPerPublish} µs, ` +
          `Redis ${f.redisCpuMicrosPerPublish} µs (${f.streamsPerPublish} appends, ${f.scriptsPerPublish} scripts)` +
          (backend.cluster ? `; shards ${f.shards.map((s) => `${s.node} ${s.cpuShare}%`).join(', ')}` : '') +
          (f.starShard
            ? `; * shard ${f.starShard.mainCpuMicrosPerPublish} µs/publish, hottest ${f.hottestShard.node} ` +
              `${f.hottestShard.mainCpuMicrosPerPublish} µs → ≈${f.hottestShard.ceilingPerSecond}/s`
            : '') +
          (f.foreignScripts > 0.01 * f.accepted ? `; ${f.foreignScripts} scripts not ours` : '') +
          (f.errors ? ` (${JSON.stringify(f.statuses)})` : ''),
      );
    }
  } catch (err) {
    log(`  ${backend.name}: error: ${err.message.split('\n')[0]}`);
    out.error = err.message.split('\n').slice(0, 3).join(' ');
  } finally {
    for (const ws of idle) ws.terminate();
    await Promise.all(gateways.map((g) => g.stop()));
    if (redis) {
      out.keysDeleted = await redis.cleanup(prefix).catch((err) => `cleanup failed: ${err.message}`);
      redis.close();
    }
  }
  return out;
}

/**
 * The scope pattern on the Redis Cluster with `*` and `ke` spread (HISTORY_SPREAD=8) against one
 * stream each: the busiest shard's CPU per scope publish, which sets the deployment's ceiling.
 */
function spreadComparison(unspread, spread) {
  const a = unspread?.patterns?.scope;
  const b = spread?.patterns?.scope;
  if (!a?.hottestShard || !b?.hottestShard) return null;
  const shares = (f) => f.shards.map((s) => s.cpuShare);
  return {
    hottestMicrosPerPublish: [a.hottestShard.mainCpuMicrosPerPublish, b.hottestShard.mainCpuMicrosPerPublish],
    ceilingPerSecond: [a.hottestShard.ceilingPerSecond, b.hottestShard.ceilingPerSecond],
    ceilingRatio: a.hottestShard.ceilingPerSecond
      ? round(b.hottestShard.ceilingPerSecond / a.hottestShard.ceilingPerSecond, 2)
      : null,
    cpuShares: [shares(a), shares(b)],
    redisCpuMicrosPerPublish: [a.redisCpuMicrosPerPublish, b.redisCpuMicrosPerPublish],
    publishesPerSecond: [a.publishesPerSecond, b.publishesPerSecond],
  };
}

/** Cluster over standalone, per pattern: > 1 means the cluster figure is higher. */
function compare(standalone, cluster) {
  const out = {};
  for (const { name } of PATTERNS) {
    const a = standalone?.patterns?.[name];
    const b = cluster?.patterns?.[name];
    if (!a || !b) continue;
    const ratio = (key) => (a[key] ? round(b[key] / a[key], 2) : null);
    out[name] = {
      publishesPerSecond: ratio('publishesPerSecond'),
      redisCpuMicrosPerPublish: ratio('redisCpuMicrosPerPublish'),
      gatewayCpuMicrosPerPublish: ratio('gatewayCpuMicrosPerPublish'),
      p99: a.latency.p99 ? round(b.latency.p99 / a.latency.p99, 2) : null,
    };
  }
  return out;
}

/** Runs the section (`node bench/run.mjs --targets=cluster-publish`); `tetherEnv` and `cli` come from run.mjs. */
export async function runClusterPublish({ quick, ctx, log, tetherEnv, cli, profileDir }) {
  const sizes = CLUSTER_PUBLISH_SIZES[quick ? 'quick' : 'full'];
  const started = Date.now();
  const out = { sizes, cores: cpus().length, loadAverageAtStart: loadavg()[0], backends: {} };
  for (const backend of BACKENDS)
    out.backends[backend.name] = await runBackend(backend, { sizes, ctx, log, tetherEnv, cli, profileDir });
  out.comparison = compare(out.backends.standalone, out.backends.cluster);
  out.spread = spreadComparison(out.backends.clusterUnspread, out.backends.cluster);
  out.loadAverageAtEnd = loadavg()[0];
  out.durationS = Math.round((Date.now() - started) / 1000);
  log(`  cluster-publish section: ${out.durationS} s`);
  return out;
}

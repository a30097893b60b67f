// Cluster figures: two Tether nodes sharing Redis, clients spread over both, every publish sent to
// node 1. Fan-out and latency are compared with the same transport's single-node run, at the single
// node's publish rate. When events do not cross nodes (no Redis broker yet), says so instead.
import { ServerProcess } from './processes.mjs';
import { runTarget } from './scenarios.mjs';

const REDIS_URL = 'redis://127.0.0.1:6379';
const round = (v) => Math.round(v * 100) / 100;

export async function runCluster({ tethers, results, sizes, ctx, log, tetherEnv, cli, profileDir }) {
  const out = { note: null, rows: [] };
  const notes = [];
  for (const def of tethers) {
    const single = results[def.name];
    const name = `${def.name}-cluster`;
    log(`[${name}]`);
    const clusterDef = {
      ...def,
      name,
      reauth: false,
      skipLatency80: true,
      skipIdle: true,
      crossNodeProbe: true,
      maxPublishRate: single.fanoutGroups?.medianPublishesPerSecond,
      start: () =>
        [1, 2].map(
          (k) =>
            new ServerProcess(`${name}-node${k}`, cli, ['serve'], tetherEnv({ REDIS_URL }), {
              profileDir,
              readyFrom: 'log',
            }),
        ),
    };
    // Without a broker both transports fail the same way: one probe is enough.
    if (notes.length && !Object.values(out).some((v) => v?.available)) {
      out[def.name] = { available: false, note: out[tethers[0].name].note };
      continue;
    }
    let r;
    try {
      r = await runTarget(clusterDef, sizes, ctx, log);
    } catch (err) {
      r = { unavailable: `error: ${err.message.split('\n')[0]}` };
      log(`  ${r.unavailable}`);
    }
    if (r.unavailable) {
      out[def.name] = { available: false, note: `not available yet: ${r.unavailable}` };
      notes.push(`${def.name}: not available yet (${r.unavailable})`);
      continue;
    }
    const oneRatio = r.fanoutOne.deliveriesPerSecond / single.fanoutOne.deliveriesPerSecond;
    const groupRatio = r.fanoutGroups.deliveriesPerSecond / single.fanoutGroups.deliveriesPerSecond;
    const added = r.latency50.p99 - single.latency50.p99;
    out[def.name] = {
      available: true,
      // The stricter of the two fan-out patterns decides the target.
      throughputRatio: round(Math.min(oneRatio, groupRatio)),
      fanoutOneRatio: round(oneRatio),
      fanoutGroupsRatio: round(groupRatio),
      addedP99Ms: round(added),
      figures: r,
    };
    out.rows.push(
      `- ${def.name}: fan-out 1→all ${r.fanoutOne.deliveriesPerSecond.toLocaleString('en-US')}/s (${round(oneRatio)}× one node), ` +
        `scopes×10 ${r.fanoutGroups.deliveriesPerSecond.toLocaleString('en-US')}/s (${round(groupRatio)}×), ` +
        `p99 @${r.latency50.rate}/s ${r.latency50.p99} ms (${added >= 0 ? '+' : ''}${round(added)} ms vs one node)`,
    );
  }
  out.note = notes.length
    ? notes.join('; ')
    : '2 nodes, Redis at 127.0.0.1:6379, clients split evenly, publishes on node 1';
  return out;
}

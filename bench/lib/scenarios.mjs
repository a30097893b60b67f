// The measurement phases, run in order against one target with its own server and workers.
// Every wait is bounded: by an expected count, by a stall timeout, or by a duration.
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { WorkerPool } from './pool.mjs';
import { Publisher } from './publisher.mjs';
import { merge, summarize } from './histogram.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls the workers until `expected` events arrived or nothing arrived for `stallMs`. */
async function drain(pool, expected, stallMs = 5000) {
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const parts = await pool.all('collect');
    const received = parts.reduce((n, p) => n + p.received, 0);
    if (received >= expected || Date.now() - lastChange > stallMs) {
      const firsts = parts.filter((p) => p.received > 0);
      return {
        received,
        expected,
        firstAt: firsts.length ? Math.min(...firsts.map((p) => p.firstAt)) : 0,
        lastAt: firsts.length ? Math.max(...firsts.map((p) => p.lastAt)) : 0,
        hist: parts[0].hist === null ? null : merge(parts.map((p) => p.hist)),
      };
    }
    if (received !== last) {
      last = received;
      lastChange = Date.now();
    }
    await sleep(50);
  }
}

const cpuSince = (a, b) => b.cpuMicros - a.cpuMicros;

/** Several servers' probe answers as one: memory and CPU add up, time is the latest. */
/** `{[name]: write system calls per delivery}` between two stats, or nothing when they were not read. */
function writeCallsPer(s0, s1, deliveries, name) {
  const calls = s1.writeCalls - s0.writeCalls;
  return Number.isFinite(calls) ? { [name]: Math.round((calls / Math.max(1, deliveries)) * 1000) / 1000 } : {};
}

/**
 * GC pauses of a run (each server's `gcPauses()`): how many, their sum and the longest, the major ones
 * apart; and the event loop's delay (the worst server's p99 and max).
 */
function gcSummary(answers) {
  const pauses = answers.flatMap((a) => a.pauses);
  const loops = answers.map((a) => a.loop).filter((l) => l !== undefined);
  const sum = (list) => Math.round(list.reduce((n, p) => n + p.ms, 0));
  const major = pauses.filter((p) => p.major);
  return {
    pauses: pauses.length,
    totalMs: sum(pauses),
    maxMs: pauses.reduce((m, p) => Math.max(m, p.ms), 0),
    major: major.length,
    majorTotalMs: sum(major),
    majorMaxMs: major.reduce((m, p) => Math.max(m, p.ms), 0),
    loopDelayP99Ms: loops.length === 0 ? null : Math.max(...loops.map((l) => l.p99Ms)),
    loopDelayMaxMs: loops.length === 0 ? null : Math.max(...loops.map((l) => l.maxMs)),
  };
}

function gcLine(gc) {
  const loop =
    gc.loopDelayMaxMs === null ? '' : `; event loop delay p99 ${gc.loopDelayP99Ms}, max ${gc.loopDelayMaxMs} ms`;
  return `${gc.pauses} (${gc.totalMs} ms, longest ${gc.maxMs} ms), of which major ${gc.major} (${gc.majorTotalMs} ms, longest ${gc.majorMaxMs} ms)${loop}`;
}

function sumStats(list) {
  const fields = [
    'rss',
    'rssCounter',
    'heapUsed',
    'external',
    'cpuMicros',
    'writeCalls',
    'newSpaceBytes',
    'oldSpaceBytes',
    'oldSpaceUsedBytes',
    'workerHeapBytes',
  ];
  const total = { ...Object.fromEntries(fields.map((k) => [k, 0])), at: 0 };
  for (const st of list) {
    for (const k of fields) total[k] += st[k] ?? NaN;
    total.at = Math.max(total.at, st.at);
  }
  // Figures by name (V8's spaces, where the RSS is): summed name by name.
  for (const part of ['spaces', 'resident'])
    if (list.every((st) => st[part]))
      total[part] = byKey(list[0][part], (k) => list.reduce((sum, st) => sum + (st[part][k] ?? 0), 0));
  return total;
}

/** `{k: f(k)}` for every key of `of`. */
function byKey(of, f) {
  return Object.fromEntries(Object.keys(of).map((k) => [k, f(k)]));
}

/**
 * What a server's memory grew by from stats `a` to stats `b`, per connection of `n`: RSS net of the
 * growth of V8's young generation and of worker threads' V8 heaps (`workerHeapBytes` in
 * bench/lib/probe.mjs), heap+external, and V8's old space left free between objects.
 */
function grownBy(a, b, n) {
  const workerHeaps = (b.workerHeapBytes ?? 0) - (a.workerHeapBytes ?? 0);
  return {
    rssNetBytesPerConnection: Math.round((b.rss - a.rss - (b.newSpaceBytes - a.newSpaceBytes) - workerHeaps) / n),
    // What the worker threads' heaps grew by (taken out of the net figure), per connection.
    workerHeapBytesPerConnection: Math.round(workerHeaps / n),
    // The RSS growth by the kernel's counter (Node's `rss`, approximate) beside the exact one (smaps).
    rssCounterBytesPerConnection: Math.round((b.rssCounter - a.rssCounter) / n),
    rssBytesPerConnection: Math.round((b.rss - a.rss) / n),
    heapBytesPerConnection: Math.round((b.heapUsed + b.external - a.heapUsed - a.external) / n),
    oldSpaceFreeBytesPerConnection: Math.round(
      (b.oldSpaceBytes - b.oldSpaceUsedBytes - (a.oldSpaceBytes - a.oldSpaceUsedBytes)) / n,
    ),
    // What each of V8's spaces grew by (resident), and where the RSS it added is (`residentParts` in
    // bench/lib/probe.mjs), per connection; when both points have them.
    ...Object.fromEntries(
      ['spaces', 'resident']
        .filter((part) => a[part] && b[part])
        .map((part) => [part, byKey(b[part], (k) => Math.round((b[part][k] - (a[part][k] ?? 0)) / n))]),
    ),
  };
}

/**
 * Runs every phase against `def` and returns its figures. `sizes` come from run.mjs (quick or full).
 * `log` prints progress lines.
 */
export async function runTarget(def, sizes, ctx, log) {
  // Several servers (cluster mode): workers spread over them, publishes go to the first.
  const servers = [].concat(def.start());
  const out = { name: def.name, transport: def.protocol, loadAverageAtStart: loadavg()[0] };
  let pool = null;
  const server = { stats: (gc) => Promise.all(servers.map((sv) => sv.stats(gc))).then(sumStats) };
  // `--profile=phases`: one CPU profile per server and phase, rather than one of the whole run.
  const phase = async (name, fn) => {
    if (!ctx.phaseProfileDir) return fn();
    const file = (k) =>
      join(
        ctx.phaseProfileDir,
        // The scaling curve runs one target at several sizes: each size gets its own files.
        `${def.name}${def.scalingOnly ? `-${sizes.connections}` : ''}${servers.length > 1 ? `-${k + 1}` : ''}-${name}.cpuprofile`,
      );
    await Promise.all(servers.map((sv, k) => sv.profile(file(k))));
    try {
      return await fn();
    } finally {
      await Promise.all(servers.map((sv, k) => sv.profile(file(k))));
    }
  };
  try {
    const ports = await Promise.all(servers.map((sv) => sv.ready));
    const port = ports[0];
    out.ports = ports;
    pool = new WorkerPool(sizes.workers);
    await pool.all('setup', (k) => ({
      target: { protocol: def.protocol, port: ports[k % ports.length], auth: def.auth },
      offset: k,
      stride: pool.size,
      total: sizes.connections,
      recipients: sizes.recipients,
      groups: sizes.groups,
      secret: ctx.secret,
      clientKind: ctx.clientKind,
    }));

    // --- connections: rate, connect time, memory, idle CPU
    // `--heap-snapshot`: what the idle connections hold (`-idle-0` before they connect), for bench/heap-summary.mjs.
    const heapSnapshots = async (connections) => {
      for (const [k, sv] of servers.entries()) {
        const file = join(
          ctx.heapSnapshotDir,
          `${def.name}${servers.length > 1 ? `-${k + 1}` : ''}-idle-${connections}.heapsnapshot`,
        );
        log(`  heap snapshot: ${(await sv.heapSnapshot(file)).written}`);
      }
    };
    if (ctx.heapSnapshotDir && !def.skipIdle) await heapSnapshots(0);
    // Two waves, half the connections each: the memory the second one adds is measured in a process
    // the first has warmed (its bounded caches filled, its young generation grown), so it counts what
    // a connection holds and nothing the process holds once (docs/performance.md, "Method").
    const window = Math.ceil(sizes.connectWindow / pool.size);
    const before = await server.stats(true);
    const wave = async (share) => {
      const s0 = await server.stats(false);
      const parts = await pool.all('connect', { window, share });
      return { parts, cpuMicros: cpuSince(s0, await server.stats(false)) };
    };
    const waves = await phase('connect', async () => {
      const first = await wave(0.5);
      if (def.skipIdle) return [first, await wave(1)];
      await sleep(sizes.settleMs);
      const mid = await server.stats(true);
      return [first, await wave(1), mid];
    });
    const parts = waves[1].parts;
    const connected = parts.reduce((n, p) => n + p.connected, 0);
    const firstConnected = waves[0].parts.reduce((n, p) => n + p.connected, 0);
    const bothWaves = waves[0].parts.concat(parts);
    const failed = bothWaves.reduce((n, p) => n + p.failed, 0);
    const span = (ps) => Math.max(...ps.map((p) => p.endedAt)) - Math.min(...ps.map((p) => p.startedAt));
    const wallS = (span(waves[0].parts) + span(parts)) / 1e6;
    const ct = summarize(merge(bothWaves.map((p) => p.hist)));
    out.connect = {
      connected,
      failed,
      errors: bothWaves.flatMap((p) => p.errors).slice(0, 3),
      perSecond: Math.round(connected / wallS),
      p50Ms: ct.p50,
      p99Ms: ct.p99,
      serverCpuMicrosPerConnect: Math.round((waves[0].cpuMicros + waves[1].cpuMicros) / Math.max(1, connected)),
    };
    log(
      `  connect: ${connected} ok, ${failed} failed, ${out.connect.perSecond}/s, p50 ${ct.p50} ms, p99 ${ct.p99} ms${failed ? ' ' + out.connect.errors.join(' | ') : ''}`,
    );
    if (connected === 0) throw new Error(`no connection succeeded: ${out.connect.errors.join(' | ')}`);

    if (def.crossNodeProbe) {
      // One event published on the first node must reach the clients of every node.
      const probe = new Publisher(port, ctx.apiKey);
      await pool.all('reset', { mode: 'count' });
      await probe.publish('bench/all');
      const d = await drain(pool, Math.min(sizes.recipients, connected), 3000);
      probe.close();
      if (d.received < d.expected) {
        out.unavailable = `an event published on node 1 reached ${d.received} of ${d.expected} recipients (HTTP failures: ${probe.failures}${probe.lastError ? `, ${probe.lastError}` : ''})`;
        log(`  ${out.unavailable}`);
        return out;
      }
    }

    if (!def.skipIdle) {
      await sleep(sizes.settleMs);
      const held = await server.stats(true);
      const wholeWave = grownBy(before, held, connected);
      out.memory = {
        connections: connected,
        rssBytesPerConnection: wholeWave.rssBytesPerConnection,
        heapBytesPerConnection: wholeWave.heapBytesPerConnection,
        rssTotalMB: Math.round(held.rss / 1048576),
        // V8's young generation, resident (MB), before and after the connections. A connect wave grows
        // it up to its ceiling (~32 MB) whatever the connections hold: a server that was small at the
        // start counts up to ~1.6 KB per connection (at 19,000) more RSS than one whose start-up had
        // grown it. The net figure leaves that growth out (docs/performance.md, "Method").
        newSpaceMB: [before.newSpaceBytes, held.newSpaceBytes].map((b) => Math.round((b / 1048576) * 10) / 10),
        // Worker threads' V8 heaps, resident (MB): before the connections, between the waves, after.
        workerHeapMB: [before, waves[2] ?? held, held].map(
          (s) => Math.round(((s.workerHeapBytes ?? 0) / 1048576) * 10) / 10,
        ),
        rssNetBytesPerConnection: wholeWave.rssNetBytesPerConnection,
        workerHeapBytesPerConnection: wholeWave.workerHeapBytesPerConnection,
        // Of V8's old space, per connection: resident, and of that unused (free space between objects).
        oldSpaceBytesPerConnection: Math.round((held.oldSpaceBytes - before.oldSpaceBytes) / connected),
        oldSpaceFreeBytesPerConnection: wholeWave.oldSpaceFreeBytesPerConnection,
      };
      // The second wave alone, in the warm process (the goals' figure): RSS net of the growth of the
      // young generation and of worker threads' heaps, and heap.
      const mid = waves[2];
      const added = connected - firstConnected;
      if (mid !== undefined && added > 0) {
        out.memory.secondWave = {
          connections: added,
          ...grownBy(mid, held, added),
        };
      }
      const idle0 = await server.stats(false);
      await sleep(sizes.idleMs);
      const idle1 = await server.stats(false);
      out.memory.idleCpuPercent = Math.round((cpuSince(idle0, idle1) / (idle1.at - idle0.at)) * 1000) / 10;
      log(
        `  memory: ${out.memory.rssBytesPerConnection} B RSS (${out.memory.rssNetBytesPerConnection} B net of the young generation, ${out.memory.newSpaceMB.join(' → ')} MB, and of worker heaps, ${out.memory.workerHeapMB.join(' → ')} MB), ${out.memory.heapBytesPerConnection} B heap per connection (old space ${out.memory.oldSpaceBytesPerConnection} B resident, ${out.memory.oldSpaceFreeBytesPerConnection} B of it free); idle CPU ${out.memory.idleCpuPercent}%`,
      );
      const second = out.memory.secondWave;
      if (second !== undefined)
        log(
          `  memory, second wave (${second.connections} connections, warm process): ${second.rssNetBytesPerConnection} B RSS net of the young generation and of worker heaps (${second.workerHeapBytesPerConnection} B), ${second.heapBytesPerConnection} B heap per connection (${second.oldSpaceFreeBytesPerConnection} B of old space free)${second.resident ? `; RSS in malloc's heap ${second.resident.mallocHeap} B, anonymous beyond V8's heap ${second.resident.anonymousBeyondV8} B (in other threads' malloc arenas ${second.resident.threadArenas ?? '–'} B), files ${second.resident.files} B` : ''}${
            second.spaces
              ? `; V8's spaces, resident: ${Object.entries(second.spaces)
                  .filter(([, b]) => b !== 0)
                  .map(([k, b]) => `${k} ${b} B`)
                  .join(', ')}`
              : ''
          }`,
        );
      if (ctx.heapSnapshotDir) await heapSnapshots(connected);
    }

    // --- fan-out
    const pub = new Publisher(port, ctx.apiKey);
    const recipients = Math.min(sizes.recipients, connected);
    const groupScopes = Array.from({ length: sizes.groups }, (_, g) => `bench/g/${g}`);
    // Warm-up (JIT, buffers), not measured.
    await pool.all('reset', { mode: 'count' });
    await pub.burst([...Array(3).fill('bench/all'), ...groupScopes], 16);
    await drain(pool, 3 * recipients + sizes.groups * 10, 3000);

    // Each fan-out pattern runs `reps` times; the best run is reported (all runs are kept in the JSON),
    // because other load on a shared machine only ever makes a run slower.
    const best = (runs) => runs.reduce((a, r) => (r.deliveriesPerSecond > a.deliveriesPerSecond ? r : a));
    const oneRuns = [];
    await phase('fanout-one', async () => {
      // `fanoutWarmupReps` runs first, unmeasured: a fresh server's first burst is a cold one (the
      // scaling curve reads medians, which a cold run would move).
      const warmup = sizes.fanoutWarmupReps ?? 0;
      for (let rep = 0; rep < warmup + sizes.reps; rep += 1) {
        await pool.all('reset', { mode: 'count' });
        const s0 = await server.stats(false);
        const sent = await pub.burst(Array(sizes.fanoutEvents).fill('bench/all'), 4);
        const got = await drain(pool, sizes.fanoutEvents * recipients);
        const s1 = await server.stats(false);
        if (rep < warmup) continue;
        // The idle connections' own CPU (heartbeats), at the rate measured while idle, taken out.
        const idle = out.memory === undefined ? undefined : (out.memory.idleCpuPercent / 100) * (s1.at - s0.at);
        oneRuns.push({
          delivered: got.received,
          expected: got.expected,
          deliveriesPerSecond: Math.round(got.received / ((got.lastAt - sent.startedAt) / 1e6)),
          serverCpuMicrosPerDelivery: Math.round((cpuSince(s0, s1) / Math.max(1, got.received)) * 100) / 100,
          ...writeCallsPer(s0, s1, got.received, 'writeCallsPerDelivery'),
          ...(idle === undefined
            ? {}
            : {
                serverCpuMicrosPerDeliveryNetOfIdle:
                  Math.round(((cpuSince(s0, s1) - idle) / Math.max(1, got.received)) * 100) / 100,
              }),
        });
      }
    });
    out.fanoutOne = { recipients, events: sizes.fanoutEvents, ...best(oneRuns), runs: oneRuns };
    log(
      `  fan-out 1×${recipients}: ${out.fanoutOne.deliveriesPerSecond} deliveries/s, ${out.fanoutOne.serverCpuMicrosPerDelivery} µs CPU/delivery, ${out.fanoutOne.writeCallsPerDelivery ?? '?'} write calls/delivery (best of ${oneRuns.map((r) => r.deliveriesPerSecond).join(', ')}; ${out.fanoutOne.delivered}/${out.fanoutOne.expected})`,
    );

    const scopes = [];
    for (let r = 0; r < sizes.groupRounds; r += 1) scopes.push(...groupScopes);
    // Each run: every event of `perEvent` to its scope (10 recipients each), sent by `send`.
    const groupPattern = async (send, perEvent) => {
      const runs = [];
      for (let rep = 0; rep < sizes.reps; rep += 1) {
        await pool.all('reset', { mode: 'count' });
        const s0 = await server.stats(false);
        const sent = await send();
        const got = await drain(pool, perEvent.length * 10);
        const s1 = await server.stats(false);
        const wall = (got.lastAt - sent.startedAt) / 1e6;
        runs.push({
          delivered: got.received,
          expected: got.expected,
          deliveriesPerSecond: Math.round(got.received / wall),
          publishesPerSecond: Math.round(perEvent.length / wall),
          serverCpuMicrosPerPublish: Math.round(cpuSince(s0, s1) / perEvent.length),
          serverCpuMicrosPerDelivery: Math.round((cpuSince(s0, s1) / Math.max(1, got.received)) * 100) / 100,
          ...writeCallsPer(s0, s1, got.received, 'writeCallsPerDelivery'),
        });
      }
      return { publishes: perEvent.length, ...best(runs), runs };
    };
    const { runs: groupRuns, ...bestGroups } = await phase('fanout-groups', () =>
      groupPattern(() => pub.burst(scopes, 16), scopes),
    );
    const sortedRates = groupRuns.map((r) => r.publishesPerSecond).sort((a, b) => a - b);
    out.fanoutGroups = {
      groups: sizes.groups,
      ...bestGroups,
      // The sustained rate the latency runs take as 100%: the median run, not the best burst.
      medianPublishesPerSecond: sortedRates[Math.floor(sortedRates.length / 2)],
      runs: groupRuns,
    };
    log(
      `  fan-out ${sizes.groups}×10: ${out.fanoutGroups.deliveriesPerSecond} deliveries/s, ${out.fanoutGroups.publishesPerSecond} publishes/s, ${out.fanoutGroups.serverCpuMicrosPerPublish} µs CPU/publish (best of ${groupRuns.map((r) => r.deliveriesPerSecond).join(', ')})`,
    );

    // Tether only: the same events as batch publishes (arrays), and the single publishes one scope
    // level deeper (bench/g/<g>/d: one stream append more per publish, the same 10 recipients).
    if (def.tether && !def.scalingOnly) {
      out.fanoutGroupsBatch = {
        batchSize: sizes.batchSize,
        ...(await phase('fanout-batch', () =>
          groupPattern(() => pub.burstBatched(scopes, sizes.batchSize, 4), scopes),
        )),
      };
      const deeper = scopes.map((scope) => `${scope}/d`);
      out.fanoutGroupsDepth4 = await groupPattern(() => pub.burst(deeper, 16), deeper);
      log(
        `  fan-out ${sizes.groups}×10 in batches of ${sizes.batchSize}: ${out.fanoutGroupsBatch.deliveriesPerSecond} deliveries/s, ${out.fanoutGroupsBatch.serverCpuMicrosPerPublish} µs CPU/event; single publishes at depth 4: ${out.fanoutGroupsDepth4.deliveriesPerSecond} deliveries/s, ${out.fanoutGroupsDepth4.serverCpuMicrosPerPublish} µs CPU/publish (depth 3: ${out.fanoutGroups.serverCpuMicrosPerPublish})`,
      );
    }

    // --- latency at 50% and 80% of the measured maximum publish rate (groups of 10)
    // Cluster runs publish at the single node's rates, so latencies compare at the same load.
    const maxRate = def.maxPublishRate ?? out.fanoutGroups.medianPublishesPerSecond;
    const gcPauses = () => Promise.all(servers.map((sv) => sv.gcPauses()));
    const latencyRun = async (fraction, concurrent, durationMs = sizes.latencyMs) => {
      await pool.all('reset', { mode: 'latency' });
      const rate = Math.max(1, Math.round(maxRate * fraction));
      await gcPauses();
      // Profiled as `latency-<percent of the max rate>` (`--profile=phases`; a run with reauths beside
      // it is the `reauth` phase's).
      const paced = () =>
        Promise.all([pub.paced(rate, durationMs, (k) => groupScopes[k % groupScopes.length]), concurrent?.()]);
      const [p, extra] = concurrent ? await paced() : await phase(`latency-${Math.round(fraction * 100)}`, paced);
      const d = await drain(pool, p.count * 10);
      return {
        rate,
        delivered: d.received,
        expected: d.expected,
        ...summarize(d.hist),
        gc: gcSummary(await gcPauses()),
        extra,
      };
    };
    // Low load: what holding writes (per turn, and the event log's group commit) costs an event when
    // nothing else is going on.
    out.latencyLow = await latencyRun(20 / maxRate, undefined, sizes.lowRateMs ?? 3000);
    out.latency50 = await latencyRun(0.5);
    out.latency80 = def.skipLatency80 ? null : await latencyRun(0.8);
    const l80 = out.latency80
      ? `; @80% (${out.latency80.rate}/s): p50 ${out.latency80.p50} p95 ${out.latency80.p95} p99 ${out.latency80.p99} ms`
      : '';
    log(`  latency @20/s: p50 ${out.latencyLow.p50} p99 ${out.latencyLow.p99} ms`);
    log(
      `  latency @50% (${out.latency50.rate}/s): p50 ${out.latency50.p50} p95 ${out.latency50.p95} p99 ${out.latency50.p99} ms${l80}`,
    );
    log(
      `  GC pauses ≥ 1 ms @50%: ${gcLine(out.latency50.gc)}${out.latency80 ? `; @80%: ${gcLine(out.latency80.gc)}` : ''}`,
    );

    // --- reauth (Tether only: the baselines have no in-place reauth)
    if (def.reauth) {
      const reauthParts = (args) => pool.all('reauth', { ...args });
      const r0 = await server.stats(false);
      const flowing = await phase('reauth', () =>
        latencyRun(
          0.5,
          () => reauthParts({ durationMs: sizes.reauthMs, window: Math.ceil(sizes.reauthWindow / pool.size) }),
          sizes.reauthMs,
        ),
      );
      const rp = flowing.extra;
      const ok = rp.reduce((n, p) => n + p.ok, 0);
      const rfail = rp.reduce((n, p) => n + p.failed, 0);
      const rWall = (Math.max(...rp.map((p) => p.endedAt)) - Math.min(...rp.map((p) => p.startedAt))) / 1e6;
      const rh = summarize(merge(rp.map((p) => p.hist)));
      const r1 = await server.stats(false);
      delete flowing.extra;
      out.reauth = {
        ok,
        failed: rfail,
        perSecond: Math.round(ok / rWall),
        p50Ms: rh.p50,
        p99Ms: rh.p99,
        // Includes the event traffic flowing at the same time (the @50% rate).
        serverCpuPercent: Math.round((cpuSince(r0, r1) / (r1.at - r0.at)) * 100),
        // All load-generator workers together, 100 = one core: shows when the clients are the limit.
        clientCpuPercent: Math.round((rp.reduce((n, p) => n + p.cpuMicros, 0) / (rWall * 1e6)) * 100),
        eventLatencyDuring: flowing,
      };
      log(
        `  reauth while events flow: ${out.reauth.perSecond}/s (${ok} ok, ${rfail} failed), reauth p99 ${rh.p99} ms, server CPU ${out.reauth.serverCpuPercent}%, clients ${out.reauth.clientCpuPercent}%, event p99 during ${flowing.p99} ms`,
      );

      const storm = await phase('reauth-storm', () =>
        latencyRun(0.5, () => reauthParts({ durationMs: sizes.latencyMs, spread: true })),
      );
      const sp = storm.extra;
      delete storm.extra;
      out.reauthStorm = {
        reauths: sp.reduce((n, p) => n + p.ok, 0),
        failed: sp.reduce((n, p) => n + p.failed, 0),
        overMs: sizes.latencyMs,
        latency: storm,
        addedP99Ms:
          storm.p99 === null || out.latency50.p99 === null
            ? null
            : Math.round((storm.p99 - out.latency50.p99) * 100) / 100,
      };
      log(
        `  reauth storm (${out.reauthStorm.reauths} in ${sizes.latencyMs} ms): event p99 ${storm.p99} ms (+${out.reauthStorm.addedP99Ms} ms)`,
      );
    }
    out.loadAverageAtEnd = loadavg()[0];
    out.publishFailures = pub.failures;
    if (pub.failures) out.publishLastError = pub.lastError;
    pub.close();
  } finally {
    if (pool) {
      await pool.all('close').catch(() => {});
      await pool.stop();
    }
    await Promise.all(servers.map((sv) => sv.stop()));
  }
  return out;
}

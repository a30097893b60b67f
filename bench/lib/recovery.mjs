// Recovery figure: server CPU for a client that reconnects and recovers its own 10 events, with no
// unrelated events in its gap (A) and with 100,000 (quick: 20,000) of them (B), and a reconnect storm.
// The log is one stream per addressee, so a recovery should read only the client's streams: B ≈ A.
//
//   1. one Tether node (embedded store); every user connects once over /ws, keeps
//      `session_created.position`, disconnects
//   2. 10 events published to each user (POST /v1/publish, `to.users`)
//   3. A: N users reconnect presenting their position and read their 10 events; beside each run, N plain
//      connects (no position) measured the same way, so a recovery is also reported net of a connect
//   4. unrelated events published (to other users, to scopes these users do not hold)
//   5. B: the same N users present the SAME positions as in A: the same 10 events, now with the
//      unrelated events in their gap
//   6. storm: every user reconnects at once presenting its position
//
// Server CPU is the server's own `process.cpuUsage()` (bench/lib/probe.mjs), read before and after a
// run. Other load on the machine still inflates it (shared caches and cores), by as much as A and B
// differ on a busy machine; each run's recoveries over the plain connects measured next to them
// (`perPlainConnect`) cancels most of that and is reported beside the raw ratio.
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { merge, summarize } from './histogram.mjs';
import { ServerProcess, forkTracked } from './processes.mjs';
import { Publisher } from './publisher.mjs';

const WORKER = fileURLToPath(new URL('./recovery-worker.mjs', import.meta.url));

export const RECOVERY_SIZES = {
  quick: {
    users: 200,
    recoveries: 100,
    eventsPerUser: 10,
    unrelated: 20_000,
    warmupVisits: 3000,
    reps: 7,
    workers: 2,
    window: 2,
  },
  full: {
    users: 2000,
    recoveries: 500,
    eventsPerUser: 10,
    unrelated: 100_000,
    warmupVisits: 3000,
    reps: 7,
    workers: 2,
    window: 2,
  },
};

// Grants of the recovering users: one scope each (100 scopes in all), never published to, so each
// reads two streams (its user's and its scope's). Unrelated events go to `bench/other/…` and to users `o<k>`.
const scopeOf = (i) => `bench/rec/${i % 100}`;
const OTHER_USERS = 5000;
const OTHER_SCOPES = 500;

const round = (v, digits = 0) => (v === null ? null : Math.round(v * 10 ** digits) / 10 ** digits);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Forks the recovery workers; `call(k, cmd, args)` answers with the worker's result. */
function startWorkers(count) {
  const workers = Array.from({ length: count }, () => {
    const child = forkTracked(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const pending = new Map();
    child.on('message', (msg) => {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) p?.reject(new Error(msg.error));
      else p?.resolve(msg.result);
    });
    child.on('exit', (code) => {
      for (const p of pending.values()) p.reject(new Error(`recovery worker exited (${code})`));
      pending.clear();
    });
    return { child, pending, seq: 0 };
  });
  const call = (k, cmd, args) => {
    const w = workers[k];
    const id = ++w.seq;
    return new Promise((resolve, reject) => {
      w.pending.set(id, { resolve, reject });
      w.child.send({ ...args, id, cmd });
    });
  };
  return {
    all: (cmd, args) => Promise.all(workers.map((_, k) => call(k, cmd, typeof args === 'function' ? args(k) : args))),
    stop: async () => {
      for (const w of workers) if (w.child.connected) w.child.disconnect();
      await Promise.all(
        workers.map((w) => (w.child.exitCode === null ? new Promise((r) => w.child.once('exit', r)) : null)),
      );
    },
  };
}

/** POSTs every body to /v1/publish, `window` in flight; returns `{ count, failures, lastError, seconds }`. */
async function publishAll(port, apiKey, bodies, window = 16) {
  const publisher = new Publisher(port, apiKey, window);
  const started = Date.now();
  let next = 0;
  const loop = async () => {
    while (next < bodies.length) await publisher.post(bodies[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(window, bodies.length) }, loop));
  publisher.close();
  return {
    count: bodies.length,
    failures: publisher.failures,
    lastError: publisher.lastError,
    seconds: (Date.now() - started) / 1000,
  };
}

/** Worker results of one visit round, added up. */
function sumParts(parts) {
  const total = { visits: 0, ok: 0, failed: 0, recovered: 0, complete: 0, wrongCount: 0, foreign: 0, errors: [] };
  for (const p of parts) {
    for (const k of ['visits', 'ok', 'failed', 'recovered', 'complete', 'wrongCount', 'foreign']) total[k] += p[k];
    total.errors.push(...p.errors);
  }
  total.errors = total.errors.slice(0, 3);
  total.startedAt = Math.min(...parts.map((p) => p.startedAt));
  total.endedAt = Math.max(...parts.map((p) => p.endedAt));
  total.lastDoneAt = Math.max(...parts.map((p) => p.lastDoneAt));
  total.hist = merge(parts.map((p) => p.hist));
  return total;
}

/**
 * Runs the recovery section on its own Tether node and returns its figures (`{ error }` on failure).
 * `tetherEnv` and `cli` come from run.mjs, so the node runs with the same wide-open limits as the
 * other Tether targets.
 */
export async function runRecovery({ quick, ctx, log, tetherEnv, cli, profileDir }) {
  const sizes = RECOVERY_SIZES[quick ? 'quick' : 'full'];
  const started = Date.now();
  const out = { sizes, loadAverageAtStart: loadavg()[0] };
  const server = new ServerProcess('tether-recovery', cli, ['serve'], tetherEnv(), { profileDir, readyFrom: 'log' });
  let workers = null;
  try {
    const port = await server.ready;
    workers = startWorkers(sizes.workers);
    const perWorker = Math.ceil(sizes.recoveries / sizes.workers);
    await workers.all('setup', (k) => {
      const names = [];
      const scopes = [];
      for (let i = k; i < sizes.users; i += sizes.workers) {
        names.push(`r${i}`);
        scopes.push([scopeOf(i)]);
      }
      return { port, secret: ctx.secret, names, scopes };
    });

    // 1. first connects: each user's starting position
    const first = sumParts(await workers.all('first', { window: 16 }));
    log(
      `  first connects: ${first.ok} ok, ${first.failed} failed${first.failed ? ' ' + first.errors.join(' | ') : ''}`,
    );
    if (first.ok !== sizes.users)
      throw new Error(`first connects: ${first.failed} failed: ${first.errors.join(' | ')}`);

    // 2. the users' own events
    const own = [];
    for (let k = 0; k < sizes.eventsPerUser; k += 1)
      for (let i = 0; i < sizes.users; i += 1)
        own.push({ event: 'bench.own', data: { u: `r${i}`, k }, to: { users: [`r${i}`] } });
    const ownPub = await publishAll(port, ctx.apiKey, own);
    log(`  own events: ${own.length} published in ${ownPub.seconds.toFixed(1)} s, ${ownPub.failures} failed`);
    if (ownPub.failures) throw new Error(`publishing own events: ${ownPub.failures} failed (${ownPub.lastError})`);

    const visit = (withPosition, count = perWorker, window = sizes.window) =>
      workers.all('visit', { count, withPosition, expect: sizes.eventsPerUser, window }).then(sumParts);

    /**
     * `reps` × (N plain connects, then N recoveries), server CPU of each; the median per figure.
     * The warm-up matters for A, measured on a young server: per-visit CPU falls by half over the
     * first 2,000–3,000 visits of each kind (V8 tiering up a path that runs once per connection), and a
     * cold A would flatter the B/A ratio. No forced GC before the runs: a full collection shrinks
     * V8's young generation, and the runs right after it paid for extra scavenges (+30–50%).
     */
    const figure = async (label) => {
      for (let w = 0; w < Math.ceil(sizes.warmupVisits / sizes.recoveries); w += 1) {
        await visit(false);
        await visit(true);
      }
      const runs = [];
      for (let rep = 0; rep < sizes.reps; rep += 1) {
        const s0 = await server.stats(false);
        const plain = await visit(false);
        const s1 = await server.stats(false);
        const rec = await visit(true);
        const s2 = await server.stats(false);
        runs.push({
          plainMicros: round((s1.cpuMicros - s0.cpuMicros) / Math.max(1, plain.ok)),
          recoveryMicros: round((s2.cpuMicros - s1.cpuMicros) / Math.max(1, rec.ok)),
          plainFailed: plain.failed,
          visits: rec.visits,
          recovered: rec.recovered,
          complete: rec.complete,
          foreign: rec.foreign,
          failed: rec.failed,
          errors: rec.errors.concat(plain.errors).slice(0, 3),
          recoveryP50Ms: summarize(rec.hist).p50,
        });
      }
      const plainMicros = median(runs.map((r) => r.plainMicros));
      const recoveryMicros = median(runs.map((r) => r.recoveryMicros));
      const f = {
        plainConnectMicros: plainMicros,
        recoveryMicros,
        netMicros: recoveryMicros - plainMicros,
        // Each run's recoveries over the plain connects measured just before them: load on the machine
        // inflates both alike, so this compares A and B, minutes apart, better than raw CPU does.
        perPlainConnect: round(median(runs.map((r) => r.recoveryMicros / r.plainMicros)), 2),
        recoveryP50Ms: median(runs.map((r) => r.recoveryP50Ms)),
        visits: runs.reduce((n, r) => n + r.visits, 0),
        recovered: runs.reduce((n, r) => n + r.recovered, 0),
        complete: runs.reduce((n, r) => n + r.complete, 0),
        foreign: runs.reduce((n, r) => n + r.foreign, 0),
        failed: runs.reduce((n, r) => n + r.failed + r.plainFailed, 0),
        runs,
      };
      log(
        `  ${label}: ${recoveryMicros} µs server CPU per recovery, ${f.netMicros} µs net of a plain connect (${plainMicros} µs); ` +
          `recovered:true ${f.recovered}/${f.visits}, with exactly its ${sizes.eventsPerUser} own events ${f.complete}/${f.visits}` +
          `${f.foreign ? `, ${f.foreign} foreign events` : ''}${f.failed ? `, ${f.failed} failed: ${runs[0].errors.join(' | ')}` : ''}` +
          ` (runs: ${runs.map((r) => r.recoveryMicros).join(', ')} µs)`,
      );
      return f;
    };

    // 3. A: nothing unrelated in the gap
    out.a = await figure('A, no unrelated events');

    // 4. unrelated events: half to other users, half to scopes no recovering user holds
    const unrelated = Array.from({ length: sizes.unrelated }, (_, k) => ({
      event: 'bench.other',
      data: { u: null, k },
      to: k % 2 ? { scopes: [`bench/other/${k % OTHER_SCOPES}`] } : { users: [`o${k % OTHER_USERS}`] },
    }));
    const otherPub = await publishAll(port, ctx.apiKey, unrelated);
    out.publish = {
      own: own.length,
      ownPerSecond: Math.round(own.length / ownPub.seconds),
      unrelated: unrelated.length,
      unrelatedPerSecond: Math.round(unrelated.length / otherPub.seconds),
      failures: otherPub.failures,
    };
    log(
      `  unrelated events: ${unrelated.length} published in ${otherPub.seconds.toFixed(1)} s (${out.publish.unrelatedPerSecond}/s), ${otherPub.failures} failed`,
    );
    if (otherPub.failures)
      throw new Error(`publishing unrelated events: ${otherPub.failures} failed (${otherPub.lastError})`);

    // 5. B: the same positions, now with the unrelated events in the gap
    out.b = await figure(`B, ${sizes.unrelated.toLocaleString('en-US')} unrelated events`);
    out.ratio = round(out.b.recoveryMicros / out.a.recoveryMicros, 2);
    out.netRatio = out.a.netMicros > 0 ? round(out.b.netMicros / out.a.netMicros, 2) : null;
    out.perPlainConnectRatio = round(out.b.perPlainConnect / out.a.perPlainConnect, 2);
    log(
      `  B/A: ${out.ratio}× per recovery, ${out.netRatio ?? '–'}× net of a plain connect, ${out.perPlainConnectRatio}× per plain connect`,
    );

    // 6. storm: every user at once, presenting its position
    const s0 = await server.stats(false);
    const storm = await visit(true, sizes.users, sizes.users);
    const s1 = await server.stats(false);
    const h = summarize(storm.hist);
    out.storm = {
      clients: sizes.users,
      ok: storm.ok,
      failed: storm.failed,
      recovered: storm.recovered,
      recoveredShare: round((storm.recovered / sizes.users) * 100, 1),
      complete: storm.complete,
      foreign: storm.foreign,
      p50Ms: h.p50,
      p95Ms: h.p95,
      maxMs: h.max,
      // From the first client's connect to the last client's last event.
      totalMs: round((storm.lastDoneAt - storm.startedAt) / 1000, 1),
      serverCpuMs: round((s1.cpuMicros - s0.cpuMicros) / 1000, 1),
      serverCpuMicrosPerClient: round((s1.cpuMicros - s0.cpuMicros) / sizes.users),
      errors: storm.errors,
    };
    log(
      `  storm: ${sizes.users} clients at once, the last done after ${out.storm.totalMs} ms (per client p50 ${h.p50} / p95 ${h.p95} / max ${h.max} ms), ` +
        `server CPU ${out.storm.serverCpuMs} ms (${out.storm.serverCpuMicrosPerClient} µs per client), recovered:true ${out.storm.recoveredShare}%` +
        `${storm.failed ? `, ${storm.failed} failed: ${storm.errors.join(' | ')}` : ''}`,
    );
    out.loadAverageAtEnd = loadavg()[0];
    out.durationS = Math.round((Date.now() - started) / 1000);
    log(`  recovery section: ${out.durationS} s`);
  } catch (err) {
    log(`  error: ${err.message.split('\n')[0]}`);
    out.error = err.message.split('\n').slice(0, 3).join(' ');
  } finally {
    if (workers) await workers.stop();
    await server.stop();
  }
  return out;
}

// Preloaded into every server under test (`node --expose-gc --import bench/lib/probe.mjs ...`), so the
// bench reads memory and CPU the same way for Tether and the baselines without touching their code.
// It answers `{ probe: 'stats', id, gc? }` IPC messages from the bench parent.
// `{ probe: 'gc', id }` answers the GC pauses of 1 ms or more since the last such message, and the
// event loop's delay over the same time (p99 and max, ms).
// `{ probe: 'heap', id, file }` writes a heap snapshot there (after a GC).
// `{ probe: 'profile', id, file }` starts a CPU profile of this process, and the next one with the
// same `file` writes it there: a profile of one phase, not of the whole run (`--cpu-prof`).
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { PerformanceObserver, constants, monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from 'node:v8';

let profiling = null;

/**
 * Where the process's resident memory is, from `/proc/self/smaps` (Linux; null elsewhere): bytes in
 * the main thread's malloc heap (`[heap]`), in anonymous mappings less what V8's heaps (this thread's
 * and the workers', `workerHeapBytes`) have resident, of those anonymous mappings in other threads'
 * malloc arenas, and in mapped files; `total` is every mapping's, the exact RSS. (The counter Node's
 * `process.memoryUsage().rss` reads, like `/proc/self/stat`, is approximate on Linux, proc(5); it
 * differed from this sum by up to 0.24 KB per connection of a 9,500-connection wave.)
 */
function residentParts(workerHeapBytes) {
  let text;
  try {
    text = readFileSync('/proc/self/smaps', 'utf8');
  } catch {
    return null;
  }
  const parts = { mallocHeap: 0, anonymous: 0, files: 0, threadArenas: 0, total: 0 };
  let bucket = 'anonymous';
  let arena = false;
  for (const line of text.split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      const path = line.split(/\s+/)[5] ?? '';
      bucket = path === '[heap]' ? 'mallocHeap' : path === '' ? 'anonymous' : path.startsWith('[') ? null : 'files';
      // glibc's arenas of threads other than the main one are heaps of at most 64 MiB aligned to
      // 64 MiB (HEAP_MAX_SIZE on 64-bit); V8 maps its pages at 256 KiB alignment, so few of them
      // can be counted here by chance.
      arena = bucket === 'anonymous' && parseInt(line.slice(0, line.indexOf('-')), 16) % 2 ** 26 === 0;
    } else if (line.startsWith('Rss:')) {
      const bytes = Number(line.split(/\s+/)[1]) * 1024;
      parts.total += bytes;
      if (bucket === null) continue;
      parts[bucket] += bytes;
      if (arena) parts.threadArenas += bytes;
    }
  }
  parts.anonymousBeyondV8 = parts.anonymous - getHeapStatistics().total_physical_size - workerHeapBytes;
  return parts;
}

// GC pauses of 1 ms or more since the last `{ probe: 'gc' }` (which takes them): what stalls the
// event loop during a latency run, next to the latency it measures.
let gcPauses = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.duration < 1 || gcPauses.length >= 100_000) continue;
    const major = (entry.detail?.kind ?? 0) & constants.NODE_PERFORMANCE_GC_MAJOR;
    gcPauses.push({ ms: Math.round(entry.duration * 10) / 10, major: major !== 0 });
  }
}).observe({ entryTypes: ['gc'] });

// How late the event loop ran its timers (10 ms resolution): a stall of the server's own loop,
// which GC pauses alone do not show (a long synchronous task, a blocking write).
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

function profile(msg) {
  const answer = (extra = {}) => process.send({ probe: 'profile', id: msg.id, ...extra });
  if (profiling === null) {
    const session = new Session();
    session.connect();
    profiling = session;
    session.post('Profiler.enable', () =>
      session.post('Profiler.setSamplingInterval', { interval: 250 }, () =>
        session.post('Profiler.start', () => answer({ started: true })),
      ),
    );
    return;
  }
  const session = profiling;
  profiling = null;
  session.post('Profiler.stop', (err, result) => {
    if (!err) writeFileSync(msg.file, JSON.stringify(result.profile));
    session.disconnect();
    answer({ written: err ? undefined : msg.file, error: err?.message });
  });
}

/**
 * Collects every isolate of the process and answers its workers' heaps (bytes resident). The V8
 * heaps of this process's worker threads (e.g. Tether's delivery record worker) are resident in
 * the process, invisible to `getHeapStatistics()` of this thread, and moved by their own GC (a
 * worker's start-up heap shrinks when V8's memory reducer runs, its young generation grows with the
 * messages it gets), not by the connections. Reached through the inspector's `NodeWorker` domain.
 * First every isolate, this thread's and the workers', collects all it can and gives back what it
 * holds spare (`HeapProfiler.collectGarbage`, V8's low-memory GC: full GCs until nothing more is
 * freed, young generation to its minimum, pooled pages released), so a measurement point does not
 * depend on when each isolate's memory reducer last ran; then each worker answers its own
 * `total_physical_size` (its `require` is the inspector's command-line API's). The inspector is
 * attached only for this, so no other phase runs with it.
 */
async function collectIsolates() {
  const session = new Session();
  session.connect();
  const workers = new Set();
  const waiting = new Map();
  let nextId = 1;
  session.on('NodeWorker.attachedToWorker', ({ params }) => workers.add(params.sessionId));
  session.on('NodeWorker.receivedMessageFromWorker', ({ params }) => {
    const reply = JSON.parse(params.message);
    const key = `${params.sessionId}:${reply.id}`;
    waiting.get(key)?.(reply.result);
    waiting.delete(key);
  });
  const post = (method, params = {}) => new Promise((resolve) => session.post(method, params, () => resolve()));
  /** Sends one inspector command to a worker; a worker that is busy or gone answers late or never: null. */
  const send = (sessionId, method, params = {}) =>
    new Promise((resolve) => {
      const id = nextId++;
      const key = `${sessionId}:${id}`;
      waiting.set(key, resolve);
      setTimeout(() => waiting.delete(key) && resolve(null), 5000).unref();
      session.post('NodeWorker.sendMessageToWorker', { sessionId, message: JSON.stringify({ id, method, params }) });
    });
  const heapOf = async (sessionId) =>
    (
      await send(sessionId, 'Runtime.evaluate', {
        expression: "require('node:v8').getHeapStatistics().total_physical_size",
        includeCommandLineAPI: true,
        returnByValue: true,
      })
    )?.result?.value ?? 0;
  try {
    // The running workers are reported as attached while `enable` is answered.
    await post('NodeWorker.enable', { waitForDebuggerOnStart: false });
    await Promise.all([
      post('HeapProfiler.collectGarbage'),
      ...[...workers].map((id) => send(id, 'HeapProfiler.collectGarbage')),
    ]);
    return (await Promise.all([...workers].map(heapOf))).reduce((a, b) => a + b, 0);
  } finally {
    await post('NodeWorker.disable');
    session.disconnect();
  }
}

/** Write system calls made so far (`write`, `writev`, … : `syscw` of /proc/self/io), or null off Linux. */
function writeCalls() {
  try {
    return Number(/^syscw: (\d+)$/m.exec(readFileSync('/proc/self/io', 'latin1'))?.[1] ?? NaN);
  } catch {
    return null;
  }
}

if (typeof process.send === 'function') {
  process.on('message', async (msg) => {
    if (msg?.probe === 'profile') return profile(msg);
    if (msg?.probe === 'gc') {
      const taken = gcPauses;
      gcPauses = [];
      const loop = {
        p99Ms: Math.round(loopDelay.percentile(99) / 1e4) / 100,
        maxMs: Math.round(loopDelay.max / 1e4) / 100,
      };
      loopDelay.reset();
      return process.send({ probe: 'gc', id: msg.id, pauses: taken, loop });
    }
    if (msg?.probe === 'heap') {
      if (typeof globalThis.gc === 'function') globalThis.gc();
      return process.send({ probe: 'heap', id: msg.id, written: writeHeapSnapshot(msg.file) });
    }
    if (!msg || msg.probe !== 'stats') return;
    // Only where memory is measured (the inspector round trips must not land in a phase's CPU figure).
    const workerHeapBytes = msg.gc ? await collectIsolates() : null;
    const mem = process.memoryUsage();
    const resident = msg.gc ? residentParts(workerHeapBytes) : null;
    const cpu = process.cpuUsage();
    const spaces = getHeapSpaceStatistics();
    const space = (name) => spaces.find((s) => s.space_name === name);
    process.send({
      probe: 'stats',
      id: msg.id,
      // Exact (smaps) at the points memory is measured (after a GC), else the kernel's counter.
      rss: resident?.total ?? mem.rss,
      rssCounter: mem.rss,
      heapUsed: mem.heapUsed,
      external: mem.external,
      arrayBuffers: mem.arrayBuffers,
      cpuMicros: cpu.user + cpu.system,
      writeCalls: writeCalls(),
      // Resident bytes of V8's young generation: it grows with the allocation rate (a connect wave)
      // and is part of the RSS until V8 shrinks it, a part the connections do not hold.
      newSpaceBytes: space('new_space')?.physical_space_size ?? null,
      // V8's old generation: resident, and what live objects use of it (what is resident and unused
      // is free space left between objects, e.g. by a connect wave's garbage).
      oldSpaceBytes: space('old_space')?.physical_space_size ?? null,
      oldSpaceUsedBytes: space('old_space')?.space_used_size ?? null,
      workerHeapBytes,
      // Resident bytes of each of V8's spaces (this thread): where a heap resident beyond its live
      // objects is.
      spaces: Object.fromEntries(spaces.map((sp) => [sp.space_name, sp.physical_space_size])),
      ...(msg.gc ? { resident } : {}),
      at: Number(process.hrtime.bigint() / 1000n),
    });
  });
  // The parent dying must not leave a server behind.
  process.on('disconnect', () => process.exit(0));
}

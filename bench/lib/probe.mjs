// Preloaded into every server under test (`node --expose-gc --import bench/lib/probe.mjs ...`), so the
// bench reads memory and CPU the same way for Tether and the baselines without touching their code.
// It answers `{ probe: 'stats', id, gc? }` IPC messages from the bench parent.
if (typeof process.send === 'function') {
  process.on('message', (msg) => {
    if (!msg || msg.probe !== 'stats') return;
    // Two passes: the first may only move survivors to old space; the second frees what the first unlinked.
    if (msg.gc && typeof globalThis.gc === 'function') {
      globalThis.gc();
      globalThis.gc();
    }
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    process.send({
      probe: 'stats',
      id: msg.id,
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      external: mem.external,
      arrayBuffers: mem.arrayBuffers,
      cpuMicros: cpu.user + cpu.system,
      at: Number(process.hrtime.bigint() / 1000n),
    });
  });
  // The parent dying must not leave a server behind.
  process.on('disconnect', () => process.exit(0));
}

// The parent's side of the load-generator workers: fork, command, gather.
import { fileURLToPath } from 'node:url';
import { forkTracked } from './processes.mjs';

const WORKER = fileURLToPath(new URL('../worker.mjs', import.meta.url));

export class WorkerPool {
  constructor(count) {
    this.workers = Array.from({ length: count }, () => {
      const child = forkTracked(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const pending = new Map();
      child.on('message', (msg) => {
        const p = pending.get(msg.id);
        if (!p) return;
        pending.delete(msg.id);
        if (msg.error) p.reject(new Error(msg.error));
        else p.resolve(msg.result);
      });
      child.on('exit', (code) => {
        for (const p of pending.values()) p.reject(new Error(`worker exited (${code})`));
        pending.clear();
      });
      return { child, pending, seq: 0 };
    });
  }

  get size() {
    return this.workers.length;
  }

  /** Sends one command to worker `k`; `args(k)` or a plain object. */
  call(k, cmd, args = {}) {
    const w = this.workers[k];
    const id = ++w.seq;
    return new Promise((resolve, reject) => {
      w.pending.set(id, { resolve, reject });
      w.child.send({ ...args, id, cmd });
    });
  }

  /** The same command to every worker; `args` may be a function of the worker index. */
  all(cmd, args = {}) {
    return Promise.all(this.workers.map((_, k) => this.call(k, cmd, typeof args === 'function' ? args(k) : args)));
  }

  async stop() {
    for (const w of this.workers) if (w.child.connected) w.child.disconnect();
    await Promise.all(
      this.workers.map((w) => (w.child.exitCode === null ? new Promise((r) => w.child.once('exit', r)) : null)),
    );
  }
}

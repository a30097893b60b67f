// Child processes of the bench: servers under test (with the probe preloaded) and load-generator
// workers. Every child is tracked and killed when the bench exits, however it exits.
import { fork } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const PROBE = fileURLToPath(new URL('./probe.mjs', import.meta.url));
const children = new Set();

function killAll() {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

/** Forks a tracked child. */
export function forkTracked(script, args, options) {
  const child = fork(script, args, options);
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

let probeSeq = 0;

/**
 * The TCP port `pid` listens on, from /proc (Linux), or null. The fallback for Tether at
 * LOG_LEVEL=warn, where its info-level `gateway listening` line is not printed.
 */
export function listeningPort(pid) {
  let inodes;
  try {
    inodes = new Set(
      readdirSync(`/proc/${pid}/fd`)
        .map((fd) => {
          try {
            return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
          } catch {
            return undefined;
          }
        })
        .filter(Boolean),
    );
  } catch {
    return null;
  }
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // f[1] local address:port (hex), f[3] state (0A = LISTEN), f[9] inode
      if (f[3] === '0A' && inodes.has(f[9])) return parseInt(f[1].split(':')[1], 16);
    }
  }
  return null;
}

/**
 * A server under test. `ready` resolves to its port: for baselines from an IPC `{ready, port}` message,
 * for Tether from its `gateway listening` log line on stdout.
 */
export class ServerProcess {
  constructor(name, script, args, env, { profileDir, readyFrom = 'ipc' } = {}) {
    this.name = name;
    const execArgv = ['--expose-gc', '--import', PROBE];
    if (profileDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`);
    this.child = forkTracked(script, args, {
      env: { ...process.env, ...env },
      execArgv,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.stderr = '';
    this.pending = new Map();
    this.child.stderr.on('data', (d) => (this.stderr = (this.stderr + d).slice(-4000)));
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: not listening after 60 s\n${this.stderr}`)), 60_000);
      this.child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before listening\n${this.stderr}`)));
      this.child.on('message', (msg) => {
        if (msg?.ready && readyFrom === 'ipc') {
          clearTimeout(timer);
          resolve(msg.port);
        }
        if (msg?.probe === 'stats' || msg?.probe === 'profile' || msg?.probe === 'heap' || msg?.probe === 'gc')
          this.pending.get(msg.id)?.(msg);
      });
      if (readyFrom === 'log') {
        const poll = setInterval(() => {
          const port = this.child.pid ? listeningPort(this.child.pid) : null;
          if (!port) return;
          clearInterval(poll);
          clearTimeout(timer);
          resolve(port);
        }, 100);
        this.child.once('exit', () => clearInterval(poll));
        setTimeout(() => clearInterval(poll), 60_000).unref();
        this.stopPolling = () => clearInterval(poll);
      }
      let buffered = '';
      this.child.stdout.on('data', (d) => {
        if (readyFrom !== 'log') return;
        buffered += d;
        let nl;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (!line.includes('"gateway listening"')) continue;
          try {
            const { port } = JSON.parse(line);
            clearTimeout(timer);
            resolve(port);
          } catch {
            // Not JSON after all; keep reading.
          }
        }
      });
    });
    this.ready.then(
      () => this.stopPolling?.(),
      () => this.stopPolling?.(),
    );
  }

  /** Memory and CPU of the server; `gc` forces a full collection first (retained memory only). */
  stats(gc = false) {
    return this.ask({ probe: 'stats', gc });
  }

  /** Starts a CPU profile of the server; the next call writes it to `file` (one phase's profile). */
  profile(file) {
    return this.ask({ probe: 'profile', file });
  }

  /**
   * The server's GC pauses of 1 ms or more (`pauses: [{ ms, major }]`) and its event loop's delay
   * (`loop: { p99Ms, maxMs }`) since the last call.
   */
  async gcPauses() {
    const answer = await this.ask({ probe: 'gc' });
    return { pauses: answer.pauses, loop: answer.loop };
  }

  /** Writes a heap snapshot of the server to `file` (after a GC). */
  heapSnapshot(file) {
    return this.ask({ probe: 'heap', file });
  }

  ask(message) {
    const id = ++probeSeq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: probe timed out`)), 300_000);
      this.pending.set(id, (msg) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(msg);
      });
      this.child.send({ ...message, id });
    });
  }

  /** SIGTERM (so `--cpu-prof` is written by a graceful exit), SIGKILL after 10 s. */
  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

#!/usr/bin/env node
// Reauths alone: what one in-place reauth costs the gateway with no events flowing, the figure the
// full bench's reauth phase cannot give (there reauths give way to events by design).
//
// Starts one Tether gateway (the build; `--cli=<path>` another build, e.g. an older checkout's, for an
// A/B), opens `--connections` /ws connections (default 2,000, over 500 users), then keeps `--in-flight`
// reauths outstanding (default 256; each connection alternates two pre-signed tokens) for a warm-up of
// 2 s and `--seconds` (default 8) measured. Prints reauths/s, the gateway's CPU per reauth (its
// process, every thread: /proc/<pid>/stat) and this process's CPU (the load generator, one thread).
// `--profile=<dir>` writes the gateway's CPU profile there (its main thread). Any other `--NAME=value`
// is passed to the gateway as its setting NAME (e.g. `--DELIVERY_RECORD=off`).
//
//   node bench/reauth-alone.mjs [--connections=2000] [--in-flight=256] [--seconds=8]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { createTokenSigner } from './lib/tokens.mjs';

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const m = /^--([^=]+)=(.*)$/.exec(arg);
    if (!m) {
      console.error(`usage: node bench/reauth-alone.mjs [--connections=N] [--in-flight=N] [--seconds=N] (got ${arg})`);
      process.exit(2);
    }
    return [m[1], m[2]];
  }),
);
const take = (name, fallback) => {
  const value = args[name] ?? fallback;
  delete args[name];
  return value;
};
const connections = Number(take('connections', 2000));
const inFlight = Number(take('in-flight', 256));
const seconds = Number(take('seconds', 8));
const cli = take('cli', fileURLToPath(new URL('../packages/server/dist/cli.js', import.meta.url)));
const profileDir = take('profile', undefined);
const SECRET = 'bench-secret-0123456789abcdefghijklmnopqrstuvwxyz';

const server = spawn(
  process.execPath,
  [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), cli, 'serve'],
  {
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      JWT_SECRET: SECRET,
      API_KEYS: 'bench-api-key-0123456789',
      LOG_LEVEL: 'warn',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'tether-reauth-')),
      CONNECT_RATE_PER_IP: '10000000',
      MAX_CONNECTIONS_PER_USER: '100000',
      INBOUND_RATE_PER_SECOND: '1000000',
      INBOUND_BURST: '1000000',
      REAUTH_RATE_PER_MINUTE: '100000',
      SHUTDOWN_GRACE_MS: '0',
      ...args,
    },
    stdio: ['ignore', 'inherit', 'pipe'],
  },
);
process.on('exit', () => server.kill('SIGKILL'));
const port = await new Promise((resolve, reject) => {
  let seen = '';
  const onData = (chunk) => {
    seen += chunk;
    const m = /listening on http:\/\/[^:]+:(\d+)/.exec(seen);
    if (!m) return;
    server.stderr.off('data', onData);
    server.stderr.pipe(process.stderr);
    resolve(Number(m[1]));
  };
  server.stderr.on('data', onData);
  server.once('exit', (code) => reject(new Error(`gateway exited (${code}): ${seen.slice(-500)}`)));
});

/** The gateway's CPU time so far (ms, every thread). */
function serverCpuMs() {
  const fields = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const sign = createTokenSigner(SECRET);
const clients = [];
function connect(i) {
  const sub = `u${i % 500}`;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
    perMessageDeflate: false,
    headers: { authorization: `Bearer ${sign(sub, ['s:a'], 3600, i)}` },
  });
  const client = {
    ws,
    waiting: [],
    tokens: [sign(sub, ['s:a'], 3600, 1e6 + i), sign(sub, ['s:a'], 3600, 2e6 + i)],
    n: 0,
  };
  clients.push(client);
  return new Promise((resolve, reject) => {
    ws.on('error', reject);
    ws.on('message', (data) => {
      const text = data.toString();
      if (!client.open) {
        if (!text.includes('"session_created"')) return reject(new Error(text));
        client.open = true;
        return resolve();
      }
      if (text.includes('"type":"reauth_')) client.waiting.shift()?.(text.includes('"reauth_ok"'));
    });
  });
}
for (let i = 0; i < connections; i += 100)
  await Promise.all(Array.from({ length: Math.min(100, connections - i) }, (_, j) => connect(i + j)));

let ok = 0;
let failed = 0;
let stop = false;
const reauth = (client) =>
  new Promise((resolve) => {
    client.waiting.push(resolve);
    client.ws.send(`{"type":"reauth","token":"${client.tokens[client.n++ & 1]}"}`);
  });
async function lane(first) {
  for (let i = first; !stop; i += inFlight) {
    if (await reauth(clients[i % connections])) ok++;
    else failed++;
  }
}
async function run(ms) {
  stop = false;
  const lanes = Array.from({ length: inFlight }, (_, k) => lane(k));
  await new Promise((resolve) => setTimeout(resolve, ms));
  stop = true;
  await Promise.all(lanes);
}

await run(2000);
ok = 0;
failed = 0;
const cpu0 = serverCpuMs();
const own0 = process.cpuUsage();
const t0 = performance.now();
await run(seconds * 1000);
const ms = performance.now() - t0;
const cpuMs = serverCpuMs() - cpu0;
const own = process.cpuUsage(own0);
console.log(
  JSON.stringify({
    connections,
    inFlight,
    reauthsPerSecond: Math.round((ok / ms) * 1000),
    failed,
    serverCpuPercent: Math.round((cpuMs / ms) * 100),
    serverCpuPerReauthMicros: Number(((cpuMs * 1000) / ok).toFixed(1)),
    loadGeneratorCpuPercent: Math.round((own.user + own.system) / 10 / ms),
  }),
);
for (const client of clients) client.ws.terminate();
server.kill('SIGINT');
await new Promise((resolve) => server.once('exit', resolve));

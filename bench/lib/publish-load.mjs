// The load side of the cluster-publish figure (bench/lib/cluster-publish.mjs): POST /v1/publish in a
// closed loop at saturation, idle `/ws` connections, and the machine's CPU time.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import WebSocket from 'ws';
import { createHistogram, nowMicros, summarize } from './histogram.mjs';

// Makes `data` 100 bytes of JSON, as in bench/lib/publisher.mjs.
const PAD = 'x'.repeat(100 - JSON.stringify({ seq: 1234567, pad: '' }).length);
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

/** Busy and total CPU time of the whole machine so far (Linux `/proc/stat`, in clock ticks), or null. */
export function machineTicks() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    return { busy: sum(f) - f[3] - f[4], total: sum(f) };
  } catch {
    return null;
  }
}

/** One POST /v1/publish; resolves to its HTTP status, or the network error's message. */
export function post(port, agent, apiKey, body) {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/publish',
        agent,
        headers: {
          authorization: `Bearer ${apiKey}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('error', (err) => resolve(err.code ?? err.message));
    req.end(body);
  });
}

/**
 * Closed loop at saturation: `concurrency` loops, loop k posting to gateway k mod n, each sending its
 * next request when the previous one is answered, until `durationMs` have passed.
 */
export async function drive(ports, apiKey, pattern, concurrency, durationMs) {
  const perNode = Math.ceil(concurrency / ports.length);
  const agents = ports.map(() => new http.Agent({ keepAlive: true, maxSockets: perNode }));
  const hist = createHistogram();
  const statuses = {};
  let accepted = 0;
  let seq = 0;
  const startedAt = nowMicros();
  const until = startedAt + durationMs * 1000;
  const loop = async (k) => {
    const node = k % ports.length;
    while (nowMicros() < until) {
      const body = JSON.stringify({ event: 'bench', data: { seq: ++seq, pad: PAD }, to: pattern.to() });
      const t0 = nowMicros();
      const status = await post(ports[node], agents[node], apiKey, body);
      hist.recordValue(Math.max(1, nowMicros() - t0));
      if (status === 202) accepted += 1;
      else statuses[status] = (statuses[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, k) => loop(k)));
  const seconds = (nowMicros() - startedAt) / 1e6;
  for (const agent of agents) agent.destroy();
  return { accepted, errors: sum(Object.values(statuses)), statuses, seconds, latency: summarize(hist) };
}

/** `count` authenticated `/ws` connections on `port` for users that nothing is published to. */
export async function openIdle(port, sign, count, node) {
  const open = (i) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: false });
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error('idle connection: no session_created within 10 s'));
      }, 10_000);
      ws.on('open', () =>
        ws.send(JSON.stringify({ type: 'authenticate', token: sign(`idle-${node}-${i}`, ['bench/idle']) })),
      );
      ws.on('message', (buf) => {
        const frame = JSON.parse(buf.toString());
        clearTimeout(timer);
        if (frame.type === 'session_created') resolve(ws);
        else reject(new Error(`idle connection: ${buf.toString().slice(0, 200)}`));
      });
      ws.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  return Promise.all(Array.from({ length: count }, (_, i) => open(i)));
}

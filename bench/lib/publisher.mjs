// Publishes over HTTP exactly as an app backend does: `POST /v1/publish` with the API key, kept-alive
// connections. Each event's data carries its intended send time `t` (monotonic µs) for latency.
import http from 'node:http';
import { nowMicros } from './histogram.mjs';

// Padding that makes the JSON of `data` 100 bytes with a typical timestamp and sequence number.
const PAD = 'x'.repeat(100 - JSON.stringify({ t: 1234567890123, seq: 12345, pad: '' }).length);

export class Publisher {
  constructor(port, apiKey, maxSockets = 16) {
    this.port = port;
    this.apiKey = apiKey;
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
    this.seq = 0;
    this.failures = 0;
    this.lastError = null;
  }

  /** One publish of event `bench` to `scope`; resolves when the server answered. */
  publish(scope, t = nowMicros()) {
    return this.post({ event: 'bench', data: { t, seq: ++this.seq, pad: PAD }, to: { scopes: [scope] } });
  }

  /** POSTs one publish request body; resolves when the server answered (failures are counted). */
  post(request) {
    const body = JSON.stringify(request);
    return new Promise((resolve) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: this.port,
          method: 'POST',
          path: '/v1/publish',
          agent: this.agent,
          headers: {
            authorization: `Bearer ${this.apiKey}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          if (res.statusCode !== 202 && res.statusCode !== 200) {
            this.failures += 1;
            this.lastError = `HTTP ${res.statusCode}`;
          }
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', (err) => {
        this.failures += 1;
        this.lastError = err.message;
        resolve();
      });
      req.end(body);
    });
  }

  /** Publishes to each scope of `scopes` in order, `window` in flight; returns start/end times. */
  async burst(scopes, window) {
    const startedAt = nowMicros();
    let next = 0;
    const loop = async () => {
      while (next < scopes.length) await this.publish(scopes[next++]);
    };
    await Promise.all(Array.from({ length: Math.min(window, scopes.length) }, loop));
    return { startedAt, endedAt: nowMicros(), count: scopes.length };
  }

  /**
   * The same publishes as `burst`, sent as batches (`POST /v1/publish` with an array) of `size`
   * events, `window` requests in flight.
   */
  async burstBatched(scopes, size, window) {
    const startedAt = nowMicros();
    const batches = [];
    for (let i = 0; i < scopes.length; i += size)
      batches.push(
        scopes.slice(i, i + size).map((scope) => ({
          event: 'bench',
          data: { t: nowMicros(), seq: ++this.seq, pad: PAD },
          to: { scopes: [scope] },
        })),
      );
    let next = 0;
    const loop = async () => {
      while (next < batches.length) await this.post(batches[next++]);
    };
    await Promise.all(Array.from({ length: Math.min(window, batches.length) }, loop));
    return { startedAt, endedAt: nowMicros(), count: scopes.length };
  }

  /**
   * Open-loop publishing at `rate`/s for `durationMs`: each event is sent at (and stamped with) its
   * scheduled time, so a slow server shows up as latency rather than as a lower send rate.
   */
  async paced(rate, durationMs, scopeOf) {
    const startedAt = nowMicros();
    const total = Math.max(1, Math.round((rate * durationMs) / 1000));
    const gap = 1e6 / rate;
    const inflight = [];
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor((nowMicros() - startedAt) / gap) + 1);
      for (; sent < due; sent += 1) inflight.push(this.publish(scopeOf(sent), Math.round(startedAt + sent * gap)));
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(inflight);
    return { startedAt, endedAt: nowMicros(), count: total };
  }

  close() {
    this.agent.destroy();
  }
}

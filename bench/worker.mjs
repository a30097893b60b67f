// Load-generator worker: holds a slice of the bench's connections and runs the commands the parent
// sends over IPC (`{ id, cmd, ...args }` → `{ id, result }` or `{ id, error }`). Every loop is bounded
// by a count or a deadline; the worker exits when the parent goes away.
import { clientFor } from './lib/clients.mjs';
import { createHistogram, encode, nowMicros } from './lib/histogram.mjs';
import { createTokenSigner } from './lib/tokens.mjs';

const state = {
  target: null,
  identities: [],
  clients: [],
  tokens: [],
  mode: 'count',
  received: 0,
  firstAt: 0,
  lastAt: 0,
  hist: createHistogram(),
};

/** Grants of connection `i`: the first `recipients` share `bench/all`; connections 10g…10g+9 form group g. */
function grantsOf(i, recipients, groups) {
  return i < recipients ? ['bench/all', `bench/g/${Math.floor(i / 10) % groups}`] : ['bench/idle'];
}

const sink = {
  event(payload) {
    const now = nowMicros();
    if (state.received === 0) state.firstAt = now;
    state.received += 1;
    state.lastAt = now;
    if (state.mode === 'latency') {
      const data = state.ClientClass.eventData(payload);
      const lag = now - data.t;
      state.hist.recordValue(lag > 0 ? lag : 1);
    }
  },
};

function urlFor(target, identity) {
  const base =
    target.protocol === 'ws'
      ? `ws://127.0.0.1:${target.port}/ws`
      : `ws://127.0.0.1:${target.port}/socket.io/?EIO=4&transport=websocket`;
  if (target.auth !== 'query') return base;
  const q = `user=${encodeURIComponent(identity.user)}&scopes=${encodeURIComponent(identity.scopes.join(','))}`;
  return base + (base.includes('?') ? '&' : '?') + q;
}

const commands = {
  setup({ target, offset, stride, total, recipients, groups, secret, clientKind }) {
    state.target = target;
    state.ClientClass = clientFor(target.protocol, clientKind);
    state.identities = [];
    state.nextConnect = 0;
    const sign = target.auth === 'token' ? createTokenSigner(secret) : null;
    state.tokens = [];
    // Strided, so recipients and groups spread evenly over workers (and, in cluster runs, over nodes).
    for (let i = offset; i < total; i += stride) {
      const identity = { user: `u${i}`, scopes: grantsOf(i, recipients, groups) };
      state.identities.push(identity);
      // Three tokens per connection: the handshake one and two for alternating reauths.
      if (sign)
        state.tokens.push([
          sign(identity.user, identity.scopes, 3600, 0),
          sign(identity.user, identity.scopes, 3600, 1),
          sign(identity.user, identity.scopes, 3600, 2),
        ]);
    }
    return { count: state.identities.length };
  },

  /**
   * Opens the connections not opened yet, up to `share` (0–1) of this worker's, at most `window`
   * handshakes in flight; records each connect time. Called again, it goes on where it stopped.
   */
  async connect({ window, share = 1 }) {
    const hist = createHistogram();
    const errors = [];
    const until = Math.ceil(state.identities.length * share);
    let failed = 0;
    const startedAt = nowMicros();
    const one = async () => {
      while (state.nextConnect < until) {
        const i = state.nextConnect++;
        const t0 = nowMicros();
        const client = new state.ClientClass(urlFor(state.target, state.identities[i]), state.tokens[i]?.[0], sink);
        try {
          await client.ready;
          hist.recordValue(Math.max(1, nowMicros() - t0));
          state.clients[i] = client;
        } catch (err) {
          failed += 1;
          if (errors.length < 3) errors.push(String(err?.message ?? err));
          client.close();
        }
      }
    };
    const opening = until - state.nextConnect;
    await Promise.all(Array.from({ length: Math.max(0, Math.min(window, opening)) }, one));
    return {
      connected: state.clients.filter(Boolean).length,
      failed,
      errors,
      startedAt,
      endedAt: nowMicros(),
      hist: encode(hist),
    };
  },

  reset({ mode }) {
    state.mode = mode;
    state.received = 0;
    state.firstAt = 0;
    state.lastAt = 0;
    state.hist = createHistogram();
    return {};
  },

  collect() {
    return {
      received: state.received,
      firstAt: state.firstAt,
      lastAt: state.lastAt,
      hist: state.mode === 'latency' ? encode(state.hist) : null,
    };
  },

  /**
   * Reauths until `durationMs` passes. `window`: that many in flight (as fast as the server answers);
   * or `spread`: every connection once, evenly over the duration (a refresh storm).
   */
  async reauth({ durationMs, window, spread }) {
    const hist = createHistogram();
    let ok = 0;
    let failed = 0;
    const live = [];
    state.clients.forEach((c, i) => c && live.push(i));
    if (live.length === 0) return { ok, failed, startedAt: nowMicros(), endedAt: nowMicros(), hist: encode(hist) };
    const deadline = Date.now() + durationMs;
    const startedAt = nowMicros();
    const cpu0 = process.cpuUsage();
    const once = async (k) => {
      const i = live[k % live.length];
      // Each pass over the connections switches token, so no reauth repeats the token in use.
      const token = state.tokens[i][1 + (Math.floor(k / live.length) % 2)];
      const t0 = nowMicros();
      const good = await state.clients[i].reauth(token);
      hist.recordValue(Math.max(1, nowMicros() - t0));
      if (good) ok += 1;
      else failed += 1;
    };
    if (spread) {
      const gapMs = durationMs / live.length;
      const pending = [];
      for (let k = 0; k < live.length && Date.now() < deadline + 1000; k += 1) {
        const due = startedAt / 1000 + k * gapMs;
        const wait = due - nowMicros() / 1000;
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        pending.push(once(k));
      }
      await Promise.all(pending);
    } else {
      let k = 0;
      const loop = async () => {
        while (Date.now() < deadline) await once(k++);
      };
      await Promise.all(Array.from({ length: window }, loop));
    }
    const cpu = process.cpuUsage(cpu0);
    return { ok, failed, startedAt, endedAt: nowMicros(), hist: encode(hist), cpuMicros: cpu.user + cpu.system };
  },

  close() {
    for (const c of state.clients) c?.close();
    state.clients = [];
    return {};
  },
};

process.on('message', async (msg) => {
  try {
    const result = await commands[msg.cmd](msg);
    process.send({ id: msg.id, result });
  } catch (err) {
    process.send({ id: msg.id, error: String(err?.stack ?? err) });
  }
});
process.on('disconnect', () => process.exit(0));

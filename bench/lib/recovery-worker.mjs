// Load-generator worker of the recovery figure (bench/lib/recovery.mjs): holds a slice of the
// recovering users, their tokens and stored positions, and runs the parent's commands over IPC
// (`{ id, cmd, ...args }` → `{ id, result }` or `{ id, error }`). Every client is bounded by a timeout;
// the worker exits when the parent goes away.
//
// One visit is one `/ws` connection:
//
//   worker                                   gateway
//     │ upgrade /ws                             │
//     │ {type:"authenticate", token, position?} │
//     │ ───────────────────────────────────────▶│
//     │ {type:"session_created", recovered,     │
//     │   position}  then replayed events       │
//     │ ◀───────────────────────────────────────│
//     │ close 1000 (after `expect` events)      │
//     │ ───────────────────────────────────────▶│
//     │ close 1000                              │
//     │ ◀───────────────────────────────────────│  events between our close and its close still
//                                                   count, so "exactly `expect`" is checked.
import WebSocket from 'ws';
import { createHistogram, encode, nowMicros } from './histogram.mjs';
import { createTokenSigner } from './tokens.mjs';

const TIMEOUT_MS = 60_000;
// A replay follows session_created at once: this long without the next event means it will not come.
const STALL_MS = 5_000;
const state = { port: 0, users: [] };

/**
 * One connection of `user`: authenticates (presenting `position` when given), waits for
 * `session_created` and then for `expect` events, closes gracefully and counts what arrived until the
 * server's close frame. Never rejects: failures come back as `{ error }`.
 */
function visit(user, position, expect) {
  return new Promise((resolve) => {
    const startedAt = nowMicros();
    const out = { recovered: null, position: null, events: 0, foreign: 0, doneAt: 0, error: null };
    const ws = new WebSocket(`ws://127.0.0.1:${state.port}/ws`, { perMessageDeflate: false });
    let closing = false;
    let stall = null;
    const finish = (error) => {
      clearTimeout(timer);
      clearTimeout(stall);
      if (error && !out.error) out.error = error;
      out.doneAt ||= nowMicros();
      out.micros = out.doneAt - startedAt;
      resolve(out);
    };
    const timer = setTimeout(() => {
      ws.terminate();
      finish(`timeout after ${TIMEOUT_MS} ms (${out.events} of ${expect} events)`);
    }, TIMEOUT_MS);
    const close = () => {
      if (closing) return;
      closing = true;
      clearTimeout(stall);
      out.doneAt = nowMicros();
      ws.close(1000);
    };
    const awaitNext = () => {
      clearTimeout(stall);
      stall = setTimeout(() => {
        out.error = `stalled at ${out.events} of ${expect} events`;
        close();
      }, STALL_MS);
    };
    ws.on('open', () => {
      const frame = { type: 'authenticate', token: user.token };
      if (position) frame.position = position;
      ws.send(JSON.stringify(frame));
    });
    ws.on('message', (buf) => {
      const frame = JSON.parse(buf.toString());
      if (frame.type === 'session_created') {
        out.recovered = frame.recovered === true;
        out.position = frame.position ?? null;
        // Not recovered: nothing is replayed, so there is nothing to wait for.
        if (expect === 0 || !out.recovered) close();
        else awaitNext();
      } else if (frame.type === 'event') {
        out.events += 1;
        // Only this user's own events may be replayed: the rest of the gap is addressed elsewhere.
        if (frame.data?.u !== user.name) out.foreign += 1;
        if (out.events === expect) close();
        else if (!closing) awaitNext();
      } else if (frame.type === 'auth_error' || frame.type === 'error') {
        out.error = `${frame.type} ${frame.code}: ${frame.message}`;
        ws.terminate();
      }
    });
    ws.on('error', (err) => {
      if (!out.error) out.error = err.message;
    });
    ws.on('close', (code) => finish(closing ? null : `closed ${code} before ${expect} events`));
  });
}

/** Runs `visit` for `users`, at most `window` at a time; gathers counts and a time histogram. */
async function visitAll(users, { withPosition, expect, window, store = false }) {
  const hist = createHistogram();
  const result = {
    visits: users.length,
    ok: 0,
    failed: 0,
    recovered: 0,
    // recovered:true with exactly `expect` events, all of them the user's own
    complete: 0,
    wrongCount: 0,
    foreign: 0,
    errors: [],
    lastDoneAt: 0,
  };
  let next = 0;
  const startedAt = nowMicros();
  const one = async () => {
    while (next < users.length) {
      const user = users[next++];
      const r = await visit(user, withPosition ? user.position : undefined, expect);
      hist.recordValue(Math.max(1, r.micros));
      result.lastDoneAt = Math.max(result.lastDoneAt, r.doneAt);
      if (r.error) {
        result.failed += 1;
        if (result.errors.length < 3) result.errors.push(`${user.name}: ${r.error}`);
        continue;
      }
      result.ok += 1;
      if (r.recovered) result.recovered += 1;
      if (r.events !== expect) result.wrongCount += 1;
      if (r.recovered && r.events === expect && r.foreign === 0) result.complete += 1;
      result.foreign += r.foreign;
      if (store) user.position = r.position;
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, users.length) }, one));
  return { ...result, startedAt, endedAt: nowMicros(), hist: encode(hist) };
}

const commands = {
  /** The worker's users: `names[k]` holds the grants `scopes[k]`; one token each. */
  setup({ port, secret, names, scopes }) {
    state.port = port;
    const sign = createTokenSigner(secret);
    state.users = names.map((name, k) => ({ name, token: sign(name, scopes[k], 3600), position: null }));
    return { count: state.users.length };
  },

  /** First connect of every user, without a position: stores `session_created.position`. */
  first({ window }) {
    return visitAll(state.users, { withPosition: false, expect: 0, window, store: true });
  },

  /**
   * The first `count` users reconnect. `withPosition`: presenting their stored position and reading
   * `expect` events; otherwise a plain connect and close (stored positions are left as they are).
   */
  visit({ count, withPosition, expect, window }) {
    const users = state.users.slice(0, count ?? state.users.length);
    return visitAll(users, { withPosition, expect: withPosition ? expect : 0, window });
  },
};

process.on('message', async (msg) => {
  try {
    const result = await commands[msg.cmd](msg);
    process.send({ id: msg.id, result });
  } catch (err) {
    process.send({ id: msg.id, error: err.stack ?? String(err) });
  }
});
process.on('disconnect', () => process.exit(0));

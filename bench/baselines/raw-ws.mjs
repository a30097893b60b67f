// Baseline "raw ws": the ceiling for Node. One frame is built per publish (JSON + WebSocket header,
// once) and the same Buffer is written to every recipient's TCP socket. Recipients come from a
// grant → sockets index (one lookup per ancestor of the scope), like Tether's hub.
// BENCH_CORK=1: each socket is corked for the rest of the event-loop turn, so every frame written
// to it in one turn leaves in one syscall (the write-coalescing ceiling, see docs/performance.md).
import { WebSocketServer, Sender } from 'ws';
import {
  API_KEY,
  PING_INTERVAL_MS,
  ancestorsOf,
  createControlServer,
  listenAndAnnounce,
  nextId,
  parseIdentity,
} from './common.mjs';

const CORK = process.env.BENCH_CORK === '1';
/** grant → Set of connection records `{ ws, socket, grants, alive }`. */
const byGrant = new Map();
const all = new Set();

let corked = [];
let uncorkScheduled = false;
function uncorkAll() {
  const list = corked;
  corked = [];
  uncorkScheduled = false;
  for (const c of list) {
    c.corked = false;
    c.socket.uncork();
  }
}

function write(conn, frame) {
  if (conn.socket.destroyed) return false;
  if (CORK && !conn.corked) {
    conn.corked = true;
    conn.socket.cork();
    corked.push(conn);
    if (!uncorkScheduled) {
      uncorkScheduled = true;
      setImmediate(uncorkAll);
    }
  }
  conn.socket.write(frame);
  return true;
}

function buildFrame(text) {
  const data = Buffer.from(text);
  const parts = Sender.frame(data, { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false });
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

function publish({ event, data, to, id }) {
  const frame = buildFrame(JSON.stringify({ type: 'event', event, data, id }));
  const scopes = to.scopes ?? [];
  // A single index hit needs no de-duplication; several (ancestors, multiple scopes) do.
  const hits = [];
  for (const s of scopes)
    for (const g of ancestorsOf(s)) {
      const set = byGrant.get(g);
      if (set) hits.push(set);
    }
  let delivered = 0;
  if (hits.length === 1) {
    for (const c of hits[0]) if (write(c, frame)) delivered += 1;
  } else if (hits.length > 1) {
    const seen = new Set();
    for (const set of hits)
      for (const c of set) {
        if (seen.has(c)) continue;
        seen.add(c);
        if (write(c, frame)) delivered += 1;
      }
  }
  return delivered;
}

const server = createControlServer(API_KEY, publish);
const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false, clientTracking: false });
wss.on('connection', (ws, req) => {
  const { user, scopes } = parseIdentity(req.url);
  const conn = { ws, socket: ws._socket, grants: scopes, alive: true, corked: false };
  all.add(conn);
  for (const g of scopes) {
    let set = byGrant.get(g);
    if (!set) byGrant.set(g, (set = new Set()));
    set.add(conn);
  }
  ws.on('pong', () => (conn.alive = true));
  ws.on('close', () => {
    all.delete(conn);
    for (const g of conn.grants) {
      const set = byGrant.get(g);
      set?.delete(conn);
      if (set && set.size === 0) byGrant.delete(g);
    }
  });
  ws.send(JSON.stringify({ type: 'session_created', sessionId: nextId(), userId: user }));
});

// One sweep for all heartbeats rather than a timer per connection.
setInterval(() => {
  for (const c of all) {
    if (!c.alive) {
      c.ws.terminate();
      continue;
    }
    c.alive = false;
    c.ws.ping();
  }
}, PING_INTERVAL_MS).unref();

listenAndAnnounce(server, CORK ? 'raw-ws-corked' : 'raw-ws');

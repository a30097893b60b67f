// Shared plumbing for the baseline servers: the same control surface as Tether
// (`POST /v1/publish` with `Authorization: Bearer <key>`), identities from query params,
// scope matching by ancestry (grant `a/b` covers scope `a/b/c`), and announcing the port over IPC.
import http from 'node:http';

/** `?user=u1&scopes=a/b,c` → `{ user, scopes }`. Baselines trust the query: they measure the ceiling. */
export function parseIdentity(url) {
  const q = new URL(url ?? '/', 'http://x').searchParams;
  const scopes = (q.get('scopes') ?? '').split(',').filter(Boolean);
  return { user: q.get('user') ?? 'anon', scopes };
}

/** `a/b/c` → `['a/b/c', 'a/b', 'a', '*']`: the grants that cover the scope. */
export function ancestorsOf(scope) {
  const out = [];
  let s = scope;
  for (;;) {
    out.push(s);
    const cut = s.lastIndexOf('/');
    if (cut < 0) break;
    s = s.slice(0, cut);
  }
  out.push('*');
  return out;
}

/** Whether grant `g` covers scope `s`. */
export function covers(g, s) {
  return g === '*' || g === s || (s.length > g.length && s.startsWith(g) && s.charCodeAt(g.length) === 47);
}

let seq = 0;
/** An event id, unique within one baseline process. */
export function nextId() {
  seq += 1;
  return `e${seq}`;
}

/**
 * An HTTP server whose only route is `POST /v1/publish`; `publish(request)` returns the number of
 * connections written to. Other requests go to `fallback` (Socket.IO/ws attach their own handlers).
 */
export function createControlServer(apiKey, publish) {
  const server = http.createServer();
  server.on('request', (req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/publish') return;
    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      res.writeHead(401).end();
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400).end();
        return;
      }
      const id = body.id ?? nextId();
      const delivered = publish({ event: body.event, data: body.data ?? {}, to: body.to ?? {}, id });
      const out = JSON.stringify({ id, delivered });
      res.writeHead(202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) }).end(out);
    });
  });
  return server;
}

/** Listens on 127.0.0.1:0 and tells the bench parent the port. */
export function listenAndAnnounce(server, name) {
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    if (process.send) process.send({ ready: true, port, name });
    else console.log(JSON.stringify({ msg: 'baseline listening', name, port }));
  });
}

export const PING_INTERVAL_MS = Number(process.env.PING_INTERVAL_MS ?? 25_000);
export const API_KEY = process.env.API_KEYS ?? 'bench-key';

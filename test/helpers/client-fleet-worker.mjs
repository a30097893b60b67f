// The clients of a ClientFleet (client-fleet.ts), in a worker thread: plain JavaScript, since a
// worker does not get vitest's TypeScript transform.
import { parentPort, workerData } from 'node:worker_threads';
import { io } from 'socket.io-client';
import { WebSocket } from 'ws';

const { url, wsTokens, sioTokens } = workerData;
const sockets = [];
const summary = {
  ws: { sessions: 0, shutdownNotices: 0, closeCodes: {} },
  sio: { sessions: 0, shutdownNotices: 0, disconnectReasons: {} },
};
let toCreate = wsTokens.length + sioTokens.length;
let open = toCreate;
let noticeSeen = false;
let closeSeen = false;

const post = (message) => parentPort.postMessage(message);
const count = (table, key) => (table[key] = (table[key] ?? 0) + 1);

function created(kind) {
  summary[kind].sessions++;
  if (--toCreate === 0) post({ type: 'ready' });
}

function notice(kind) {
  summary[kind].shutdownNotices++;
  if (!noticeSeen) post({ type: 'server_shutdown' });
  noticeSeen = true;
}

function gone(detail) {
  if (!closeSeen) post({ type: 'first_close', ...detail });
  closeSeen = true;
  if (--open === 0) post({ type: 'all_closed', summary });
}

for (const token of wsTokens) {
  const ws = new WebSocket(url.replace(/^http/, 'ws') + '/ws', { headers: { authorization: `Bearer ${token}` } });
  sockets.push(ws);
  ws.on('message', (data) => {
    const frame = JSON.parse(String(data));
    if (frame.type === 'session_created') created('ws');
    if (frame.type === 'server_shutdown') notice('ws');
  });
  ws.on('error', (err) => post({ type: 'error', message: `ws: ${err.message}` }));
  ws.on('close', (code) => {
    count(summary.ws.closeCodes, code);
    gone({ transport: 'ws', code });
  });
}

for (const token of sioTokens) {
  const socket = io(url, { transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true });
  sockets.push(socket);
  socket.on('session_created', () => created('sio'));
  socket.on('server_shutdown', () => notice('sio'));
  socket.on('connect_error', (err) => post({ type: 'error', message: `socket.io: ${err.message}` }));
  socket.on('disconnect', (reason) => {
    count(summary.sio.disconnectReasons, reason);
    gone({ transport: 'socket.io', reason });
  });
}

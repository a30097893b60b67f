// Baseline "naive Socket.IO": the pattern our users wrote. A Map of connections; for each event the
// recipients are found by looping over every connection and testing its grants; one `emit` per
// recipient (so the packet is encoded once per recipient).
import { Server } from 'socket.io';
import {
  API_KEY,
  PING_INTERVAL_MS,
  covers,
  createControlServer,
  listenAndAnnounce,
  nextId,
  parseIdentity,
} from './common.mjs';

const connections = new Map();

function publish({ event, data, to, id }) {
  const scopes = to.scopes ?? [];
  const payload = { ...data, id };
  let delivered = 0;
  for (const conn of connections.values()) {
    if (conn.grants.some((g) => scopes.some((s) => covers(g, s)))) {
      conn.socket.emit(event, payload);
      delivered += 1;
    }
  }
  return delivered;
}

const server = createControlServer(API_KEY, publish);
const io = new Server(server, { serveClient: false, pingInterval: PING_INTERVAL_MS });
io.on('connection', (socket) => {
  const { user, scopes } = parseIdentity(socket.request.url);
  connections.set(socket.id, { socket, user, grants: scopes });
  socket.on('disconnect', () => connections.delete(socket.id));
  socket.emit('session_created', { sessionId: nextId(), userId: user });
});

listenAndAnnounce(server, 'sio-naive');

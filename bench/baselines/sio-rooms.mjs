// Baseline "Socket.IO rooms": each connection joins one room per grant; a publish to scope S is
// `io.to([S and its ancestors]).emit(...)`, which Socket.IO de-duplicates and encodes once.
import { Server } from 'socket.io';
import {
  API_KEY,
  PING_INTERVAL_MS,
  ancestorsOf,
  createControlServer,
  listenAndAnnounce,
  nextId,
  parseIdentity,
} from './common.mjs';

const server = createControlServer(API_KEY, publish);
const io = new Server(server, { serveClient: false, pingInterval: PING_INTERVAL_MS });

function publish({ event, data, to, id }) {
  const rooms = [];
  for (const s of to.scopes ?? []) rooms.push(...ancestorsOf(s));
  // The answer's count is informational (the bench counts deliveries at the clients): the sum of
  // room sizes, so counting adds no de-duplication work to the pattern being measured.
  let delivered = 0;
  for (const r of rooms) delivered += io.sockets.adapter.rooms.get(r)?.size ?? 0;
  io.to(rooms).emit(event, { ...data, id });
  return delivered;
}

io.on('connection', (socket) => {
  const { user, scopes } = parseIdentity(socket.request.url);
  socket.join(scopes);
  socket.emit('session_created', { sessionId: nextId(), userId: user });
});

listenAndAnnounce(server, 'sio-rooms');

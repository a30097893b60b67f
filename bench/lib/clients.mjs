// Load-generator clients, one class per wire protocol. Each reports application events to a shared
// `sink` ({ event(text|data) }) so counting costs one call, and exposes `ready`, `reauth`, `close`.
//
// - WsJsonClient: Tether `/ws` and the raw ws baselines (JSON text frames with a `type`).
// - EioClient: Socket.IO over its WebSocket transport, spoken directly with `ws` (Engine.IO v4
//   packets: `0` open, `2`/`3` ping/pong, `40` connect, `42` event, `43` ack, `44` connect error).
//   It costs the client far less CPU than socket.io-client, which matters on a 2-core machine where
//   clients and server share the CPU; `--client=socket.io-client` swaps in the real client.
// - SioClient: socket.io-client itself.
import WebSocket from 'ws';
import { io } from 'socket.io-client';

const WS_OPTIONS = { perMessageDeflate: false, handshakeTimeout: 60_000 };

export class WsJsonClient {
  constructor(url, token, sink) {
    this.sink = sink;
    this.pendingReauth = [];
    const headers = token ? { authorization: `Bearer ${token}` } : undefined;
    this.ws = new WebSocket(url, { ...WS_OPTIONS, headers });
    this.ready = new Promise((resolve, reject) => {
      this.ws.once('error', reject);
      this.ws.once('close', (code, reason) => reject(new Error(`closed ${code} ${reason}`)));
      this.ws.on('message', (buf) => {
        const text = buf.toString();
        if (this.open) return this.onMessage(text);
        const frame = JSON.parse(text);
        if (frame.type === 'session_created') {
          this.open = true;
          resolve();
        } else reject(new Error(`${frame.type}: ${frame.code ?? ''} ${frame.message ?? ''}`));
      });
    });
    this.ready.catch(() => {});
  }

  onMessage(text) {
    if (text.includes('"type":"event"')) return this.sink.event(text);
    if (text.includes('"type":"reauth_')) {
      const done = this.pendingReauth.shift();
      if (done) done(text.includes('"type":"reauth_ok"'));
    }
  }

  /** Resolves true on `reauth_ok`. Frames answer in order, so a FIFO of resolvers suffices. */
  reauth(token) {
    return new Promise((resolve) => {
      this.pendingReauth.push(resolve);
      this.ws.send(`{"type":"reauth","token":"${token}"}`);
    });
  }

  static eventData(text) {
    return JSON.parse(text).data;
  }

  close() {
    this.ws.terminate();
  }
}

export class EioClient {
  constructor(url, token, sink) {
    this.sink = sink;
    this.acks = new Map();
    this.nextAck = 1;
    this.ws = new WebSocket(url, WS_OPTIONS);
    this.ready = new Promise((resolve, reject) => {
      this.ws.once('error', reject);
      this.ws.once('close', (code, reason) => reject(new Error(`closed ${code} ${reason}`)));
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {});
    this.ws.on('message', (buf) => this.onMessage(buf.toString(), token));
  }

  onMessage(text, token) {
    const type = text.charCodeAt(0);
    if (type === 50 /* '2' ping */) return this.ws.send('3');
    if (type === 48 /* '0' open */) return this.ws.send(token ? `40${JSON.stringify({ token })}` : '40');
    if (type !== 52 /* '4' message */) return;
    const sub = text.charCodeAt(1);
    if (sub === 50 /* '2' event */) {
      if (this.open) return this.sink.event(text);
      if (text.startsWith('42["session_created"')) {
        this.open = true;
        this.resolveReady();
      }
      return;
    }
    if (sub === 51 /* '3' ack */) {
      const bracket = text.indexOf('[');
      const id = Number(text.slice(2, bracket));
      const done = this.acks.get(id);
      if (done) {
        this.acks.delete(id);
        done(text.includes('"ok":true'));
      }
      return;
    }
    if (sub === 52 /* '4' connect error */) this.rejectReady(new Error(`connect_error ${text.slice(2, 200)}`));
  }

  reauth(token) {
    return new Promise((resolve) => {
      const id = this.nextAck++;
      this.acks.set(id, resolve);
      this.ws.send(`42${id}["reauth",{"token":"${token}"}]`);
    });
  }

  static eventData(text) {
    return JSON.parse(text.slice(2))[1];
  }

  close() {
    this.ws.terminate();
  }
}

export class SioClient {
  constructor(url, token, sink) {
    const u = new URL(url);
    this.socket = io(`http://${u.host}`, {
      path: '/socket.io/',
      query: Object.fromEntries([...u.searchParams].filter(([k]) => k !== 'EIO' && k !== 'transport')),
      transports: ['websocket'],
      auth: token ? { token } : undefined,
      reconnection: false,
      forceNew: true,
      timeout: 60_000,
    });
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('session_created', resolve);
      this.socket.once('connect_error', reject);
    });
    this.ready.catch(() => {});
    this.socket.on('bench', (data) => sink.event(data));
  }

  async reauth(token) {
    const ack = await this.socket.timeout(60_000).emitWithAck('reauth', { token });
    return ack?.ok === true;
  }

  static eventData(data) {
    return data;
  }

  close() {
    this.socket.disconnect();
  }
}

/** The client class and URL for a target's protocol. */
export function clientFor(protocol, clientKind) {
  if (protocol === 'ws') return WsJsonClient;
  return clientKind === 'socket.io-client' ? SioClient : EioClient;
}

import type { Server } from 'socket.io';
import { WebSocket } from 'ws';
import type { OutboundEvent } from '../hub/types.js';

type SioEncoder = Server['encoder'];
type SioPacket = Parameters<SioEncoder['encode']>[0];

/** Socket.IO's EVENT packet type (socket.io-parser `PacketType.EVENT`). */
const EVENT_PACKET = 2 as SioPacket['type'];

/** Write options understood by `Client._packet` / engine.io: packets already encoded, maybe framed. */
export interface SioWriteOptions {
  preEncoded: true;
  /** The complete WebSocket frame, so the websocket transport writes it without framing again. */
  wsPreEncodedFrame?: Buffer[];
}

/** One publish, encoded for every Socket.IO recipient. */
export interface SioEncoded {
  packets: unknown[];
  options: SioWriteOptions;
}

type FrameFn = (
  data: Buffer,
  options: { readOnly: boolean; mask: boolean; rsv1: boolean; opcode: number; fin: boolean },
) => Buffer[];

// `ws` exposes its frame builder as `WebSocket.Sender.frame` (untyped); socket.io's own in-memory
// adapter pre-frames broadcasts the same way. Feature-detected so a ws upgrade cannot break us.
const wsFrame = (WebSocket as unknown as { Sender?: { frame?: FrameFn } }).Sender?.frame;

/**
 * Encodes an application event once per publish (cached on `event.encoded.sio`), exactly as
 * socket.io's adapter does for `io.to(room).emit()`: parser encoding, plus the finished WebSocket
 * frame when the packet is a single text packet. Recipients then write the same bytes.
 */
export function encodeSioEvent(encoder: SioEncoder, event: OutboundEvent): SioEncoded {
  const cached = event.encoded.sio as SioEncoded | undefined; // only this module writes `encoded.sio`
  if (cached !== undefined) return cached;
  // Second argument: the delivery meta, when the event has a position in the log (recovery).
  const args: unknown[] = [event.event, { ...event.data, id: event.id }];
  if (event.position !== undefined) args.push({ id: event.id, position: event.position });
  const packet: SioPacket = { type: EVENT_PACKET, nsp: '/', data: args };
  const packets = encoder.encode(packet) as unknown[];
  const options: SioWriteOptions = { preEncoded: true };
  const only = packets[0];
  if (wsFrame !== undefined && packets.length === 1 && typeof only === 'string') {
    // "4" is engine.io's "message" packet type.
    options.wsPreEncodedFrame = wsFrame(Buffer.from('4' + only), {
      readOnly: false,
      mask: false,
      rsv1: false,
      opcode: 1,
      fin: true,
    });
  }
  const encoded = { packets, options };
  event.encoded.sio = encoded;
  return encoded;
}

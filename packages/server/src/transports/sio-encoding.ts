import type { Server } from 'socket.io';
import * as ws from 'ws';
import type { OutboundEvent, PositionSource } from '../hub/types.js';
import { frameWithPosition, frameWithTail, textFrame } from './ws-frames.js';

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

// `ws` exposes its frame builder as the `Sender` export's static `frame` (untyped); socket.io's own
// in-memory adapter pre-frames broadcasts the same way. Feature-detected so a ws upgrade cannot break
// us. (It was read from `WebSocket.Sender`, which only the CommonJS build has: under ESM it was
// undefined and every plain recipient's packet was framed again.)
export const wsFrame = (ws as unknown as { Sender?: { frame?: FrameFn } }).Sender?.frame;

/**
 * Encodes an application event for one recipient, exactly as socket.io's adapter does for
 * `io.to(room).emit()`. Every client gets the published `data` as the first argument, unchanged.
 * A client that asked for delivery meta in its handshake (`auth.meta: true`, as the SDK does) gets
 * a second argument `{id, position?}`; others get nothing more, so one-argument handlers in any
 * language work. The parts recipients share are encoded once per publish and cached on
 * `event.encoded.sio`: the one-argument packet with its WebSocket frame (every plain client writes
 * the same bytes), and the two-argument packet up to its meta, to which each recipient's position
 * is appended.
 */
export function encodeSioEvent(
  encoder: SioEncoder,
  event: OutboundEvent,
  position: string | undefined,
  meta: boolean,
): SioEncoded {
  const cached = (event.encoded.sio ??= encodeShared(encoder, event)) as Shared; // only this module writes it
  if (!meta) return framed(cached);
  if (cached.open === undefined) return encodePackets(encoder, event, { id: event.id, position });
  return { packets: [cached.open + ',{"id":' + cached.idJson + metaTail(position)], options: { preEncoded: true } };
}

/**
 * The event's finished WebSocket frame for one recipient on the websocket transport (engine.io's
 * message packet "4" followed by the Socket.IO packet `encodeSioEvent` gives it), for writing
 * straight to the TCP socket; undefined when the event is not one text packet (then use
 * `encodeSioEvent`). A plain recipient gets the frame built once per publish; a recipient with
 * delivery meta gets its own, from bytes built once per publish and its position.
 */
export function sioEventFrame(
  encoder: SioEncoder,
  event: OutboundEvent,
  position: PositionSource | undefined,
  meta: boolean,
): Buffer | undefined {
  const cached = (event.encoded.sio ??= encodeShared(encoder, event)) as Shared;
  if (cached.open === undefined) return undefined;
  if (!meta) return (cached.frame ??= textFrame('4' + cached.open + ']'));
  const head = (cached.metaHead ??= Buffer.from('4' + cached.open + ',{"id":' + cached.idJson));
  if (position === undefined) return frameWithTail(head, 0, head.length, '}]');
  return frameWithPosition(head, 0, head.length, position, CLOSE_META);
}

/** What follows a position in a meta recipient's packet: the string's quote, the object, the array. */
const CLOSE_META = Buffer.from('"}]', 'latin1');

/**
 * The end of a meta recipient's packet after the event id. Positions are URL-safe characters only:
 * one byte each, nothing to escape.
 */
function metaTail(position: string | undefined): string {
  return position === undefined ? '}]' : ',"position":"' + position + '"}]';
}

interface Shared {
  /** The one-argument packet: the published data, nothing added. */
  bare: SioEncoded;
  /** The bare packet without its closing `]`, when it is one text packet; else undefined. */
  open: string | undefined;
  idJson: string;
  /** Whether `bare` got its WebSocket frame (built once, and only when a plain client receives it). */
  framed: boolean;
  /** `sioEventFrame`'s frame for plain recipients, built on first use. */
  frame: Buffer | undefined;
  /** The bytes of a meta recipient's frame body before its position (`sioEventFrame`), built on first use. */
  metaHead: Buffer | undefined;
}

function encodeShared(encoder: SioEncoder, event: OutboundEvent): Shared {
  const bare = encodePackets(encoder, event, undefined);
  const only = bare.packets[0];
  const open =
    bare.packets.length === 1 && typeof only === 'string' && only.endsWith(']') ? only.slice(0, -1) : undefined;
  return { bare, open, idJson: JSON.stringify(event.id), framed: false, frame: undefined, metaHead: undefined };
}

/** The bare packet with its finished WebSocket frame when it is one text packet, so recipients write the same bytes. */
function framed(shared: Shared): SioEncoded {
  if (shared.framed) return shared.bare;
  shared.framed = true;
  const only = shared.bare.packets[0];
  if (wsFrame !== undefined && shared.bare.packets.length === 1 && typeof only === 'string') {
    // "4" is engine.io's "message" packet type.
    shared.bare.options.wsPreEncodedFrame = wsFrame(Buffer.from('4' + only), {
      readOnly: false,
      mask: false,
      rsv1: false,
      opcode: 1,
      fin: true,
    });
  }
  return shared.bare;
}

function encodePackets(
  encoder: SioEncoder,
  event: OutboundEvent,
  meta: { id: string; position: string | undefined } | undefined,
): SioEncoded {
  const args: unknown[] = [event.event, event.data];
  if (meta !== undefined) args.push(meta.position === undefined ? { id: meta.id } : meta);
  const packet: SioPacket = { type: EVENT_PACKET, nsp: '/', data: args };
  return { packets: encoder.encode(packet) as unknown[], options: { preEncoded: true } };
}

import { TetherError, type ClientFrame, type ServerFrame } from '@tether/protocol';
import type { OutboundEvent, SystemMessage } from '../hub/types.js';
import { readResume } from './resume.js';

/** Longest token accepted in a frame; real JWTs are far shorter, this only bounds garbage. */
const MAX_TOKEN_CHARS = 16 * 1024;
const MAX_CHANNEL_CHARS = 256;
const MAX_RID_CHARS = 128;

/**
 * Parses a `/ws` text frame into a `ClientFrame`. Every way a frame can be wrong ends in
 * `TetherError('FRAME_INVALID', <what is wrong>)`, which the connection answers with an `error`
 * frame while staying open. Handwritten rather than zod: five frame types, and this runs per frame.
 */
export function parseClientFrame(text: string): ClientFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid('Frame is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('Frame must be a JSON object');
  const frame = value as Record<string, unknown>;
  const type = frame.type;
  if (typeof type !== 'string') throw invalid('Frame needs a string "type"');
  switch (type) {
    case 'authenticate': {
      const resume = readResume(frame.position, frame.channels, frame.narrow);
      return { type, token: readToken(frame), ...resume };
    }
    case 'reauth':
      return { type, token: readToken(frame) };
    case 'send': {
      const rid = frame.rid;
      if (typeof rid !== 'string' || rid.length === 0 || rid.length > MAX_RID_CHARS)
        throw invalid(`"rid" must be a non-empty string of at most ${MAX_RID_CHARS} characters`);
      // event/key are checked by the send dispatcher, which answers with a send_ack.
      return { type, event: frame.event as string, data: frame.data, key: frame.key as string, rid };
    }
    case 'subscribe':
    case 'unsubscribe': {
      const channel = readChannel(frame);
      const rid = frame.rid;
      if (rid === undefined) return { type, channel };
      if (typeof rid !== 'string' || rid.length > MAX_RID_CHARS)
        throw invalid(`"rid" must be a string of at most ${MAX_RID_CHARS} characters`);
      return { type, channel, rid };
    }
    case 'narrow': {
      // The scopes are the hub's to check (it answers VALIDATION_FAILED); only the shape is read here.
      const rid = frame.rid;
      if (rid !== undefined && (typeof rid !== 'string' || rid.length > MAX_RID_CHARS))
        throw invalid(`"rid" must be a string of at most ${MAX_RID_CHARS} characters`);
      if (frame.scopes !== null && !Array.isArray(frame.scopes)) throw invalid('"scopes" must be an array or null');
      return rid === undefined
        ? { type, scopes: frame.scopes as string[] | null }
        : { type, scopes: frame.scopes as string[] | null, rid };
    }
    default:
      throw invalid(`Unknown frame type "${type.slice(0, 40)}"`);
  }
}

/** `{token}` of an authenticate/reauth frame or Socket.IO `reauth` payload. Throws FRAME_INVALID. */
export function readToken(payload: unknown): string {
  const token = field(payload, 'token');
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_CHARS)
    throw invalid('"token" must be a non-empty string');
  return token;
}

/** `{channel}` of a subscribe/unsubscribe frame or Socket.IO payload. Throws FRAME_INVALID. */
export function readChannel(payload: unknown): string {
  const channel = field(payload, 'channel');
  if (typeof channel !== 'string' || channel.length === 0 || channel.length > MAX_CHANNEL_CHARS) {
    throw invalid(`"channel" must be a non-empty string of at most ${MAX_CHANNEL_CHARS} characters`);
  }
  return channel;
}

/** Serializes a server frame (one place, so every frame goes out the same way). */
export function encodeFrame(frame: ServerFrame): string {
  return JSON.stringify(frame);
}

/** The frame for a system message the hub asks a connection to send. */
export function systemFrame(message: SystemMessage): ServerFrame {
  switch (message.kind) {
    case 'session_created':
      return { type: 'session_created', ...message.payload };
    case 'token_expiring':
      return { type: 'token_expiring', ...message.payload };
    case 'auth_error':
      return { type: 'auth_error', ...message.payload };
    case 'server_shutdown':
      return { type: 'server_shutdown', ...message.payload };
    case 'error':
      return { type: 'error', ...message.payload };
  }
}

/**
 * An application event's frame for one recipient. The part every recipient shares (event, data, id)
 * is encoded once per publish and cached on the event; only the recipient's position is appended.
 */
export function encodedEvent(event: OutboundEvent, position: string | undefined): string {
  const head = (event.encoded.ws ??= encodeFrame({
    type: 'event',
    event: event.event,
    data: event.data,
    id: event.id,
  }));
  // Positions are URL-safe characters only: nothing to escape.
  return position === undefined ? head : head.slice(0, -1) + ',"position":"' + position + '"}';
}

function field(payload: unknown, name: string): unknown {
  return typeof payload === 'object' && payload !== null ? (payload as Record<string, unknown>)[name] : undefined;
}

function invalid(message: string): TetherError {
  return new TetherError('FRAME_INVALID', message);
}

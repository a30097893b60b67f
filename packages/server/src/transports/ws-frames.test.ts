import { TetherError } from '@tether/protocol';
import type { Writable } from 'node:stream';
import * as ws from 'ws';
import { describe, expect, it } from 'vitest';
import { fixedPosition } from '../hub/types.js';
import { channelName, echoedChannel, eventFrame, parseClientFrame, textFrame, tokenOf } from './ws-frames.js';

/** `ws`'s frame parser: its ESM entry exports it, @types/ws does not declare it. */
const { Receiver } = ws as unknown as {
  Receiver: new (options: { isServer: boolean; maxPayload: number }) => Writable;
};

/** The text of each frame in `bytes`, as a `ws` client reads them (so a malformed frame fails here). */
function readFrames(bytes: Buffer): string[] {
  const texts: string[] = [];
  const receiver = new Receiver({ isServer: false, maxPayload: 0 });
  receiver.on('message', (data: Buffer, isBinary: boolean) => {
    expect(isBinary).toBe(false);
    texts.push(data.toString('utf8'));
  });
  receiver.on('error', (err: Error) => {
    throw err;
  });
  receiver.write(bytes);
  return texts;
}

function codeOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof TetherError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('did not throw');
}

describe('/ws frame parsing', () => {
  it('parses the client frames', () => {
    expect(parseClientFrame('{"type":"authenticate","token":"t"}')).toEqual({
      type: 'authenticate',
      token: 't',
      resume: undefined,
    });
    expect(parseClientFrame('{"type":"reauth","token":"t"}')).toEqual({ type: 'reauth', token: 't' });
    expect(parseClientFrame('{"type":"subscribe","channel":"project:1","rid":"r1"}')).toEqual({
      type: 'subscribe',
      channel: 'project:1',
      rid: 'r1',
    });
    expect(parseClientFrame('{"type":"unsubscribe","channel":"project:1"}')).toEqual({
      type: 'unsubscribe',
      channel: 'project:1',
    });
  });

  it('answers every malformed frame with FRAME_INVALID and a reason', () => {
    for (const bad of [
      '{',
      '"text"',
      '[1]',
      'null',
      '{"t":1}',
      '{"type":7}',
      '{"type":"nope"}',
      '{"type":"subscribe","channel":"c","rid":5}',
      '{"type":"narrow","scopes":[],"rid":{}}',
      '{"type":"send","event":"e","key":"k"}',
    ]) {
      const err = codeOf(() => parseClientFrame(bad));
      expect(err.code, bad).toBe('FRAME_INVALID');
      expect(err.message.length).toBeGreaterThan(5);
    }
  });

  it('encodes an event once, then frames it for each recipient with its position', () => {
    const event = { id: 'e1', event: 'ping', data: { a: 1 }, publishedAt: 0, encoded: {} as { ws?: Buffer } };
    const plain = eventFrame(event, undefined);
    const shared = event.encoded.ws;
    expect(readFrames(plain).map((t) => JSON.parse(t))).toEqual([
      { type: 'event', event: 'ping', data: { a: 1 }, id: 'e1' },
    ]);
    const positioned = eventFrame(event, fixedPosition('2.abc'));
    expect(event.encoded.ws).toBe(shared);
    expect(readFrames(positioned).map((t) => JSON.parse(t))).toEqual([
      { type: 'event', event: 'ping', data: { a: 1 }, id: 'e1', position: '2.abc' },
    ]);
  });

  it('frames text of every length class (7-bit, 16-bit and 64-bit lengths) and multi-byte characters', () => {
    for (const length of [0, 1, 125, 126, 127, 65_535, 65_536, 70_000]) {
      const text = 'é€'.repeat(Math.floor(length / 5)) + 'x'.repeat(length - 5 * Math.floor(length / 5));
      expect(Buffer.byteLength(text)).toBe(length);
      expect(readFrames(textFrame(text))).toEqual([text]);
      const event = { id: 'é', event: 'e', data: { text }, publishedAt: 0, encoded: {} };
      expect(JSON.parse(readFrames(eventFrame(event, fixedPosition('1.a')))[0]!)).toEqual({
        type: 'event',
        event: 'e',
        data: { text },
        id: 'é',
        position: '1.a',
      });
    }
    // Frames written back to back are read back as separate messages.
    expect(readFrames(Buffer.concat([textFrame('{"a":1}'), textFrame('{"b":2}')]))).toEqual(['{"a":1}', '{"b":2}']);
  });

  it('reads a narrow frame: a list of scopes or null, with an optional rid', () => {
    expect(parseClientFrame('{"type":"narrow","scopes":["ke/a"],"rid":"1"}')).toEqual({
      type: 'narrow',
      scopes: ['ke/a'],
      rid: '1',
    });
    expect(parseClientFrame('{"type":"narrow","scopes":null}')).toEqual({ type: 'narrow', scopes: null });
  });

  it("passes tokens, channels and scopes on as sent: their rules (and answers) are the verifier's and the hub's", () => {
    expect(parseClientFrame('{"type":"reauth"}')).toEqual({ type: 'reauth', token: undefined });
    expect(parseClientFrame('{"type":"authenticate","token":7}')).toMatchObject({ token: 7 });
    expect(parseClientFrame('{"type":"subscribe","channel":""}')).toEqual({ type: 'subscribe', channel: '' });
    expect(parseClientFrame('{"type":"narrow","scopes":"ke"}')).toEqual({ type: 'narrow', scopes: 'ke' });
  });

  it('reads a token: AUTH_REQUIRED when none, AUTH_INVALID ("format") when not a string, else as sent', () => {
    expect(codeOf(() => tokenOf(undefined)).code).toBe('AUTH_REQUIRED');
    expect(codeOf(() => tokenOf('')).code).toBe('AUTH_REQUIRED');
    expect(codeOf(() => tokenOf(null)).code).toBe('AUTH_REQUIRED');
    expect(codeOf(() => tokenOf(42))).toEqual({ code: 'AUTH_INVALID', message: 'Invalid authentication token format' });
    expect(codeOf(() => tokenOf({ a: 1 })).code).toBe('AUTH_INVALID');
    // Length and characters are checked once, by the verifier (assertJwtShape), on every path.
    expect(tokenOf('x'.repeat(20_000))).toHaveLength(20_000);
  });

  it('hands the hub a string channel, "" for anything else, and echoes at most a valid name\'s length', () => {
    expect(channelName('project:1')).toBe('project:1');
    expect(channelName(7)).toBe('');
    expect(echoedChannel('c'.repeat(5000))).toHaveLength(200);
    expect(echoedChannel({})).toBe('');
  });
});

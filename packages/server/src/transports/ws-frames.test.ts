import { TetherError } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { encodedEvent, parseClientFrame } from './ws-frames.js';

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
  it('parses the four client frames', () => {
    expect(parseClientFrame('{"type":"authenticate","token":"t"}')).toEqual({ type: 'authenticate', token: 't' });
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
      '{"type":"reauth"}',
      '{"type":"subscribe","channel":""}',
      '{"type":"subscribe","channel":"c","rid":5}',
    ]) {
      const err = codeOf(() => parseClientFrame(bad));
      expect(err.code, bad).toBe('FRAME_INVALID');
      expect(err.message.length).toBeGreaterThan(5);
    }
  });

  it('encodes an event once and reuses the text for every recipient, adding each one its position', () => {
    const event = { id: 'e1', event: 'ping', data: { a: 1 }, publishedAt: 0, encoded: {} };
    const first = encodedEvent(event, undefined);
    expect(JSON.parse(first)).toEqual({ type: 'event', event: 'ping', data: { a: 1 }, id: 'e1' });
    expect(encodedEvent(event, undefined)).toBe(first);
    expect(JSON.parse(encodedEvent(event, '2.abc'))).toEqual({
      type: 'event',
      event: 'ping',
      data: { a: 1 },
      id: 'e1',
      position: '2.abc',
    });
  });

  it('reads a narrow frame: a list of scopes or null, with an optional rid', () => {
    expect(parseClientFrame('{"type":"narrow","scopes":["ke/a"],"rid":"1"}')).toEqual({
      type: 'narrow',
      scopes: ['ke/a'],
      rid: '1',
    });
    expect(parseClientFrame('{"type":"narrow","scopes":null}')).toEqual({ type: 'narrow', scopes: null });
    expect(codeOf(() => parseClientFrame('{"type":"narrow","scopes":"ke"}')).code).toBe('FRAME_INVALID');
  });
});

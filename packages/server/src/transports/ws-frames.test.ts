import { TetherError } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { channelName, echoedChannel, encodedEvent, parseClientFrame, tokenOf } from './ws-frames.js';

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

import { describe, expect, it } from 'vitest';
import {
  bearerSubprotocol,
  extractSocketIoToken,
  extractWsToken,
  readCookie,
  type HandshakeView,
} from './token-extract.js';

const view = (over: Partial<HandshakeView> = {}): HandshakeView => ({
  headers: {},
  url: '/x',
  origin: 'absent',
  allowQueryToken: false,
  ...over,
});

describe('token extraction', () => {
  it('Socket.IO: auth.token, then header, then allowed cookie, then query when enabled', () => {
    const all = view({
      headers: { authorization: 'Bearer H', cookie: 'access_token=C' },
      origin: 'allowed',
      url: '/socket.io/?token=Q',
      allowQueryToken: true,
    });
    expect(extractSocketIoToken({ token: 'A' }, all)).toEqual({ token: 'A', source: 'auth' });
    expect(extractSocketIoToken({}, all)).toEqual({ token: 'H', source: 'header' });
    expect(extractSocketIoToken({ token: '' }, { ...all, headers: { cookie: 'access_token=C' } })).toEqual({
      token: 'C',
      source: 'cookie',
    });
    expect(extractSocketIoToken(undefined, { ...all, headers: {} })).toEqual({ token: 'Q', source: 'query' });
  });

  it('Socket.IO: an auth.token that is there but not a string is malformed (AUTH_INVALID), not missing', () => {
    for (const token of [42, { a: 1 }, ['t'], true]) {
      expect(() => extractSocketIoToken({ token }, view({ headers: { authorization: 'Bearer H' } }))).toThrow(
        expect.objectContaining({ code: 'AUTH_INVALID', message: 'Invalid authentication token format' }),
      );
    }
    expect(extractSocketIoToken({ token: null }, view({ headers: { authorization: 'Bearer H' } }))).toEqual({
      token: 'H',
      source: 'header',
    });
  });

  it('never takes a cookie without an allowed Origin, nor a query token unless enabled', () => {
    expect(extractSocketIoToken({}, view({ headers: { cookie: 'access_token=C' } }))).toBeUndefined();
    expect(extractWsToken(view({ headers: { cookie: 'access_token=C' } }))).toBeUndefined();
    expect(extractSocketIoToken({}, view({ url: '/socket.io/?token=Q' }))).toBeUndefined();
    expect(extractWsToken(view({ url: '/ws?token=Q' }))).toBeUndefined();
  });

  it('/ws: header, then cookie, then bearer subprotocol, then query', () => {
    const headers = { authorization: 'bearer H', cookie: 'access_token=C', 'sec-websocket-protocol': 'json, bearer.P' };
    const all = view({ headers, origin: 'allowed', url: '/ws?token=Q', allowQueryToken: true });
    expect(extractWsToken(all)).toEqual({ token: 'H', source: 'header' });
    expect(extractWsToken({ ...all, headers: { ...headers, authorization: undefined } })).toEqual({
      token: 'C',
      source: 'cookie',
    });
    expect(extractWsToken({ ...all, origin: 'absent', headers: { ...headers, authorization: undefined } })).toEqual({
      token: 'P',
      source: 'subprotocol',
    });
    expect(extractWsToken({ ...all, headers: {} })).toEqual({ token: 'Q', source: 'query' });
  });

  it('ignores non-Bearer Authorization schemes and empty values', () => {
    expect(extractWsToken(view({ headers: { authorization: 'Basic dXNlcjpwdw==' } }))).toBeUndefined();
    expect(extractWsToken(view({ headers: { authorization: 'Bearer ' } }))).toBeUndefined();
    expect(bearerSubprotocol('bearer.')).toBeUndefined();
    expect(bearerSubprotocol('a,  bearer.xyz ,b')).toBe('bearer.xyz');
  });

  it('reads cookies among others, quoted or percent-encoded', () => {
    expect(readCookie('a=1; access_token=t%2Bk; b=2', 'access_token')).toBe('t+k');
    expect(readCookie('access_token="abc"', 'access_token')).toBe('abc');
    expect(readCookie('my_access_token=x', 'access_token')).toBeUndefined();
    expect(readCookie(undefined, 'access_token')).toBeUndefined();
  });
});

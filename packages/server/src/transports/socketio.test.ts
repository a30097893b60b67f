import { describe, expect, it } from 'vitest';
import { withoutToken } from './socketio.js';

describe('withoutToken', () => {
  it('drops the access token and keeps the client options', () => {
    const auth = { token: 'a.b.c', meta: true, position: 'p1', channels: ['x'] };
    expect(withoutToken(auth)).toEqual({ meta: true, position: 'p1', channels: ['x'] });
    expect(auth.token).toBe('a.b.c');
  });

  it('leaves an empty object when the token was all there was', () => {
    expect(withoutToken({ token: 'a.b.c' })).toEqual({});
  });
});

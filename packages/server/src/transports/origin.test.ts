import { TetherError } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { checkOrigin, isOriginAllowed } from './origin.js';

describe('origin policy', () => {
  it('with no ALLOWED_ORIGINS allows only the same host and port as the Host header', () => {
    expect(isOriginAllowed('http://gw.local:3000', 'gw.local:3000', [])).toBe(true);
    expect(isOriginAllowed('https://GW.local:3000', 'gw.local:3000', [])).toBe(true);
    expect(isOriginAllowed('http://gw.local:3001', 'gw.local:3000', [])).toBe(false);
    expect(isOriginAllowed('http://evil.test', 'gw.local:3000', [])).toBe(false);
    expect(isOriginAllowed('http://gw.local', undefined, [])).toBe(false);
  });

  it('with a list allows exactly the listed origins, and * allows any', () => {
    const list = ['https://app.example.com'];
    expect(isOriginAllowed('https://app.example.com', 'gw', list)).toBe(true);
    expect(isOriginAllowed('http://app.example.com', 'gw', list)).toBe(false);
    expect(isOriginAllowed('https://app.example.com.evil.test', 'gw', list)).toBe(false);
    expect(isOriginAllowed('https://anything.test', 'gw', ['*'])).toBe(true);
  });

  it('refuses the opaque origin "null" and non-http schemes', () => {
    expect(isOriginAllowed('null', 'gw', [])).toBe(false);
    expect(isOriginAllowed('file:///x', 'gw', ['file://'])).toBe(false);
  });

  it('classifies handshakes: no Origin is a non-browser client, a foreign one throws ORIGIN_FORBIDDEN', () => {
    expect(checkOrigin({ host: 'gw' }, [])).toBe('absent');
    expect(checkOrigin({ host: 'gw', origin: 'http://gw' }, [])).toBe('allowed');
    expect(() => checkOrigin({ host: 'gw', origin: 'http://evil' }, [])).toThrow(TetherError);
    try {
      checkOrigin({ host: 'gw', origin: 'http://evil' }, []);
    } catch (err) {
      expect((err as TetherError).code).toBe('ORIGIN_FORBIDDEN');
    }
  });
});

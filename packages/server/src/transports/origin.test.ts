import type { TetherError } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { defaultPublicHosts } from '../config/load.js';
import { checkOrigin, isOriginAllowed, isPublicHost, type OriginPolicy } from './origin.js';

const sameOrigin = (...publicHosts: string[]): OriginPolicy => ({ allowed: [], publicHosts });
const listed = (...allowed: string[]): OriginPolicy => ({ allowed, publicHosts: [] });

describe('origin policy', () => {
  it('with no ALLOWED_ORIGINS allows only the same host and port as the Host header, on a public host', () => {
    const policy = sameOrigin('gw.local');
    expect(isOriginAllowed('http://gw.local:3000', 'gw.local:3000', policy)).toBe(true);
    expect(isOriginAllowed('https://GW.local:3000', 'gw.local:3000', policy)).toBe(true);
    expect(isOriginAllowed('http://gw.local:3001', 'gw.local:3000', policy)).toBe(false);
    expect(isOriginAllowed('http://evil.test', 'gw.local:3000', policy)).toBe(false);
    expect(isOriginAllowed('http://gw.local', undefined, policy)).toBe(false);
  });

  it('DNS rebinding: Origin = Host = a name that is not a public host is not same origin', () => {
    const policy = sameOrigin(...defaultPublicHosts('127.0.0.1'));
    expect(isOriginAllowed('http://rebind.example:3000', 'rebind.example:3000', policy)).toBe(false);
    expect(isOriginAllowed('http://127.0.0.1:3000', '127.0.0.1:3000', policy)).toBe(true);
    expect(isOriginAllowed('http://localhost:3000', 'localhost:3000', policy)).toBe(true);
    expect(isOriginAllowed('http://[::1]:3000', '[::1]:3000', policy)).toBe(true);
  });

  it('public hosts: a name matches any port, name:port only that port; a wildcard HOST adds nothing', () => {
    expect(isPublicHost('chat.example.com:8443', ['chat.example.com'])).toBe(true);
    expect(isPublicHost('chat.example.com:8443', ['chat.example.com:443'])).toBe(false);
    expect(isPublicHost('chat.example.com', ['chat.example.com:443'])).toBe(false);
    expect(isPublicHost('user@chat.example.com', ['chat.example.com'])).toBe(false);
    expect(isPublicHost('chat.example.com/x', ['chat.example.com'])).toBe(false);
    expect(defaultPublicHosts('0.0.0.0')).toEqual(['localhost', '127.0.0.1', '[::1]']);
    expect(defaultPublicHosts('::')).toEqual(['localhost', '127.0.0.1', '[::1]']);
    expect(defaultPublicHosts('10.0.0.5')).toEqual(['localhost', '127.0.0.1', '[::1]', '10.0.0.5']);
    expect(defaultPublicHosts('fd00::5')).toEqual(['localhost', '127.0.0.1', '[::1]', '[fd00::5]']);
  });

  it('with a list allows exactly the listed origins, and * allows any', () => {
    const list = listed('https://app.example.com');
    expect(isOriginAllowed('https://app.example.com', 'gw', list)).toBe(true);
    expect(isOriginAllowed('http://app.example.com', 'gw', list)).toBe(false);
    expect(isOriginAllowed('https://app.example.com.evil.test', 'gw', list)).toBe(false);
    expect(isOriginAllowed('https://anything.test', 'gw', listed('*'))).toBe(true);
  });

  it('refuses the opaque origin "null" and non-http schemes', () => {
    expect(isOriginAllowed('null', 'gw', sameOrigin('gw'))).toBe(false);
    expect(isOriginAllowed('file:///x', 'gw', listed('file://'))).toBe(false);
  });

  it('classifies requests: no Origin is a non-browser client unless Sec-Fetch-Site says cross-site; a foreign Origin throws ORIGIN_FORBIDDEN', () => {
    const policy = sameOrigin('gw');
    expect(checkOrigin({ host: 'gw' }, policy)).toBe('absent');
    expect(checkOrigin({ host: 'gw', 'sec-fetch-site': 'same-origin' }, policy)).toBe('absent');
    expect(checkOrigin({ host: 'gw', 'sec-fetch-site': 'none' }, policy)).toBe('absent');
    expect(checkOrigin({ host: 'gw', origin: 'http://gw' }, policy)).toBe('allowed');
    for (const headers of [
      { host: 'gw', origin: 'http://evil' },
      { host: 'gw', 'sec-fetch-site': 'cross-site' },
      { host: 'gw', 'sec-fetch-site': 'same-site' },
    ]) {
      expect(() => checkOrigin(headers, policy)).toThrow(
        expect.objectContaining({ code: 'ORIGIN_FORBIDDEN' }) as TetherError,
      );
    }
  });
});

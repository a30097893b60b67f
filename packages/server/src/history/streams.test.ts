import { describe, expect, it } from 'vitest';
import { decodePosition, encodePosition, readScopes, streamKey, streamsOf } from './streams.js';

describe('streams and positions', () => {
  it('appends an event to each user, each scope and every ancestor, and each channel, once', () => {
    const streams = streamsOf({
      id: 'e',
      event: 'x',
      data: {},
      to: { users: ['u1', 'u1'], scopes: ['ke/a/b', 'ke/a'], channels: ['room:1'] },
    });
    expect(streams).toEqual(['u:u1', 's:ke/a/b', 's:ke/a', 's:ke', 's:*', 'c:room:1']);
  });

  it('reads the fewest scope streams: a grant covered by another adds nothing', () => {
    expect(readScopes(['ke/a', 'ke', 'ke/b/c', 'ug'])).toEqual(['ke', 'ug']);
    expect(readScopes(['ke/a', '*'])).toEqual(['*']);
    expect(readScopes([])).toEqual([]);
  });

  it('encodes cursors compactly and URL-safe, and decodes them back', () => {
    const entries = [
      { key: streamKey('u:alice'), epoch: 'AbCd_-12', offset: 0 },
      { key: streamKey('s:*'), epoch: '', offset: 0 },
      { key: streamKey('c:room:1'), epoch: 'zzzzzzzz', offset: 123_456_789 },
    ];
    const position = encodePosition(entries);
    expect(position).toMatch(/^2(\.[A-Za-z0-9_-]+)+$/);
    expect(position.length).toBeLessThan(3 * 24);
    const decoded = decodePosition(position)!;
    for (const { key, epoch, offset } of entries) expect(decoded.get(key)).toEqual({ epoch, offset });
  });

  it('refuses what is not a position of this format: the old `<epoch>:<offset>`, garbage, oversize', () => {
    for (const bad of ['a1b2c3d4e5f6a7b8:42', '2.x', '3.' + 'a'.repeat(17), 'x'.repeat(40_000), '']) {
      expect(decodePosition(bad), bad).toBeUndefined();
    }
    expect(decodePosition('2')).toEqual(new Map());
  });
});

import { describe, expect, it } from 'vitest';
import { StreamLayout, decodePosition, encodePosition, readScopes, streamKey, streamScope } from './streams.js';

describe('streams and positions', () => {
  it('appends an event to each user, each scope and every ancestor, and each channel, once', () => {
    const streams = StreamLayout.SINGLE.streamsOf({
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

  it('a spread layout splits * and top-level scopes into sub-streams, each scope to one of them', () => {
    const layout = new StreamLayout(8);
    const to = (scopes: string[]) => ({ id: 'e', event: 'x', data: {}, to: { users: [], scopes, channels: [] } });
    const k = layout.bucket('ke/a/b');
    expect(layout.streamsOf(to(['ke/a/b']))).toEqual(['s:ke/a/b', 's:ke/a', `s:ke#${k}/8`, `s:*#${k}/8`]);
    // Every event to one scope goes to the same sub-stream: its order is one stream's order.
    expect(layout.streamsOf(to(['ke/a/b']))).toEqual(layout.streamsOf(to(['ke/a/b'])));
    // Many scopes use every sub-stream.
    const used = new Set(Array.from({ length: 200 }, (_, i) => layout.bucket(`ke/d${i % 7}/w${i}`)));
    expect(used.size).toBe(8);
    expect(layout.scopeStreams('*')).toEqual(Array.from({ length: 8 }, (_, i) => `s:*#${i}/8`));
    expect(layout.scopeStreams('ke')).toHaveLength(8);
    expect(layout.scopeStreams('ke/a')).toEqual(['s:ke/a']);
    expect(layout.streamsRead('u1', ['ke/a', '*'], ['room'])).toHaveLength(1 + 1 + 8 + 1);
    expect(streamScope('s:*#3/8')).toBe('*');
    expect(streamScope('s:ke/a')).toBe('ke/a');
    expect(streamScope('u:x#1')).toBeUndefined();
    // The single layout keeps today's names.
    expect(StreamLayout.SINGLE.streamsOf(to(['ke/a/b']))).toEqual(['s:ke/a/b', 's:ke/a', 's:ke', 's:*']);
    expect(() => new StreamLayout(3)).toThrow(/spread/);
  });

  it('a position names its layout: another layout cannot continue it', () => {
    const entries = [{ key: streamKey('s:*#0/8'), epoch: 'AbCd_-12', offset: 4 }];
    const spread = encodePosition(entries, new StreamLayout(8));
    expect(spread).toMatch(/^2s8\./);
    expect(decodePosition(spread, new StreamLayout(8))!.size).toBe(1);
    expect(decodePosition(spread)).toBeUndefined();
    expect(decodePosition(spread, new StreamLayout(16))).toBeUndefined();
    expect(decodePosition(encodePosition(entries), new StreamLayout(8))).toBeUndefined();
  });

  it('gives every reader of a scope the same stream names, not a copy each', () => {
    const single = new StreamLayout(1);
    expect(single.scopeStreams('ke/a')).toEqual(['s:ke/a']);
    expect(single.scopeStreams('ke/a')).toBe(single.scopeStreams('ke/a'));
    const spread = new StreamLayout(4);
    expect(spread.scopeStreams('*')).toBe(spread.scopeStreams('*'));
    expect(spread.streamsRead('u1', ['ke/a', '*'], ['room'])).toEqual([
      'u:u1',
      's:ke/a',
      's:*#0/4',
      's:*#1/4',
      's:*#2/4',
      's:*#3/4',
      'c:room',
    ]);
  });
});
